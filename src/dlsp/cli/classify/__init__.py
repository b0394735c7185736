"""`dlsp classify ...`: train, evaluate and use audio clip classifiers on MFCC segments."""

from __future__ import annotations

import argparse

from dlsp.cli.classify import eval, predict, study, train
from dlsp.cli.common import add_command_group

EXAMPLES = """\
dlsp classify train --data fsdd/ --model cnn --out runs/digits
dlsp classify train --data genres/ --format gtzan --recipe recipes/classify_genre_cnn.yaml --out runs/genre
dlsp classify eval runs/digits --data fsdd/ --json scores.json
dlsp classify predict runs/digits one.wav two.wav
dlsp classify study-optimizers --data fsdd/ --seconds 60 --out runs/optimizers"""


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command_group(
        subparsers, "classify", "train, evaluate and use audio clip classifiers (genres, keywords, digits)",
        "Audio clip classification on MFCC segments with MLP, CNN and LSTM models.",
        EXAMPLES, (train, eval, predict, study),
    )

"""`dlsp classify ...`: train, evaluate and use audio clip classifiers on MFCC segments."""

from __future__ import annotations

import argparse

from dlsp.cli import classify_eval, classify_predict, classify_study, classify_train
from dlsp.cli.common import HelpFormatter

EXAMPLES = """\
dlsp classify train --data fsdd/ --model cnn --out runs/digits
dlsp classify train --data genres/ --format gtzan --recipe recipes/classify_genre_cnn.yaml --out runs/genre
dlsp classify eval runs/digits --data fsdd/ --json scores.json
dlsp classify predict runs/digits one.wav two.wav
dlsp classify study-optimizers --data fsdd/ --seconds 60 --out runs/optimizers"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify", help="train, evaluate and use audio clip classifiers (genres, keywords, digits)",
        description="Audio clip classification on MFCC segments with MLP, CNN and LSTM models.",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.splitlines()),
        formatter_class=HelpFormatter,
    )
    classify_subparsers = parser.add_subparsers(dest="classify_command", metavar="SUBCOMMAND")
    for module in (classify_train, classify_eval, classify_predict, classify_study):
        module.register(classify_subparsers)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

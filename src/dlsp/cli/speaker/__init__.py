"""`dlsp speaker ...`: train speaker encoders, embed recordings, enroll and verify people, evaluate EER."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command_group
from dlsp.cli.speaker import calibrate, db, embed, enroll, ensemble, eval, identify, train, verify

EXAMPLES = """\
dlsp speaker enroll alice alice1.wav alice2.wav --db speakers.db
dlsp speaker verify alice unknown.wav --db speakers.db
dlsp speaker identify unknown.wav --db speakers.db --top 3
dlsp speaker calibrate --db speakers.db --data my_speakers/ --far 0.01
dlsp speaker list --db speakers.db
dlsp speaker embed a.wav b.flac -o emb.npy
dlsp speaker eval --data $DLSP_DATA/speech/arabic_commands --split val
dlsp speaker train --data speakers/ --out runs/speaker"""


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command_group(
        subparsers, "speaker", "speaker verification: train encoders, embed, enroll, verify, evaluate EER",
        "Speaker embeddings from a bidirectional GRU encoder (a default model ships with dlsp), an SQLite enrolment "
        "database, verification at a calibrated threshold, and EER/minDCF evaluation.",
        EXAMPLES, (train, embed, enroll, verify, identify, calibrate, db, eval, ensemble),
    )

"""`dlsp speaker ...`: train speaker encoders, embed recordings, enroll and verify people, evaluate EER."""

from __future__ import annotations

import argparse

from dlsp.cli import (
    speaker_calibrate,
    speaker_db,
    speaker_embed,
    speaker_enroll,
    speaker_eval,
    speaker_identify,
    speaker_train,
    speaker_verify,
)
from dlsp.cli.common import HelpFormatter

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
    parser = subparsers.add_parser(
        "speaker", help="speaker verification: train encoders, embed, enroll, verify, evaluate EER",
        description="Speaker embeddings from a bidirectional GRU encoder (a default model ships with dlsp), an "
                    "SQLite enrolment database, verification at a calibrated threshold, and EER/minDCF "
                    "evaluation.",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.splitlines()),
        formatter_class=HelpFormatter,
    )
    speaker_subparsers = parser.add_subparsers(dest="speaker_command", metavar="SUBCOMMAND")
    for module in (speaker_train, speaker_embed, speaker_enroll, speaker_verify, speaker_identify,
                   speaker_calibrate, speaker_db, speaker_eval):
        module.register(speaker_subparsers)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


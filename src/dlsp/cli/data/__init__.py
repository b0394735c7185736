"""`dlsp data ...`: make and index datasets (synth, mix, index)."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command_group
from dlsp.cli.data import index, mix, synth

EXAMPLES = """\
dlsp data synth --out synth/
dlsp data mix --clean synth/speech --noise synth/noise --out mixes/ --snr -5:20 --count 500
dlsp data index $DLSP_DATA/speech/fsdd -o fsdd.csv"""


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command_group(
        subparsers, "data", "make and index datasets (synth, mix, index)",
        "Make and index datasets.",
        EXAMPLES, (synth, mix, index),
    )

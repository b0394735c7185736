"""`dlsp data ...`: make and index datasets (synth, mix, index)."""

from __future__ import annotations

import argparse

from dlsp.cli import data_index, data_mix, data_synth
from dlsp.cli.common import HelpFormatter

EXAMPLES = """\
dlsp data synth --out synth/
dlsp data mix --clean synth/speech --noise synth/noise --out mixes/ --snr -5:20 --count 500
dlsp data index $DLSP_DATA/speech/fsdd -o fsdd.csv"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="make and index datasets (synth, mix, index)", description="Make and index datasets.",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.splitlines()),
        formatter_class=HelpFormatter,
    )
    data_subparsers = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    for module in (data_synth, data_mix, data_index):
        module.register(data_subparsers)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

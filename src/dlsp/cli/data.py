"""`dlsp data ...`: make and index datasets (synth, mix, index)."""

from __future__ import annotations

import argparse

from dlsp.cli import data_index, data_mix, data_synth


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="make and index datasets (synth, mix, index)",
                                   description="Make and index datasets.")
    data_subparsers = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    for module in (data_synth, data_mix, data_index):
        module.register(data_subparsers)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

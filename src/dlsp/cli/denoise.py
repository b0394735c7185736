"""`dlsp denoise ...`: train, run, export and evaluate speech denoisers."""

from __future__ import annotations

import argparse

from dlsp.cli import denoise_eval, denoise_export, denoise_run, denoise_train


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("denoise", help="train, run, export and evaluate speech denoisers",
                                   description="Speech denoising on STFT magnitudes.")
    denoise_subparsers = parser.add_subparsers(dest="denoise_command", metavar="SUBCOMMAND")
    for module in (denoise_train, denoise_run, denoise_export, denoise_eval):
        module.register(denoise_subparsers)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

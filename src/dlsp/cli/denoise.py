"""`dlsp denoise ...`: train, run, export and evaluate speech denoisers."""

from __future__ import annotations

import argparse

from dlsp.cli import denoise_average, denoise_eval, denoise_export, denoise_run, denoise_train
from dlsp.cli.common import HelpFormatter

EXAMPLES = """\
dlsp denoise run noisy.wav -o clean/
dlsp denoise train --recipe recipes/denoise_cnn1d.yaml --clean speech/ --noise noise/ --out runs/cnn1d
dlsp denoise eval --model runs/cnn1d/best.pt --data mixes/
dlsp denoise export --model runs/cnn1d/best.pt -o cnn1d.onnx"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "denoise", help="train, run, export and evaluate speech denoisers",
        description="Speech denoising on STFT magnitudes.",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.splitlines()),
        formatter_class=HelpFormatter,
    )
    denoise_subparsers = parser.add_subparsers(dest="denoise_command", metavar="SUBCOMMAND")
    for module in (denoise_train, denoise_run, denoise_export, denoise_eval, denoise_average):
        module.register(denoise_subparsers)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

"""`dlsp denoise ...`: train, run, export and evaluate speech denoisers."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command_group
from dlsp.cli.denoise import average, eval, export, run, train

EXAMPLES = """\
dlsp denoise run noisy.wav -o clean/
dlsp denoise train --recipe recipes/denoise_cnn1d.yaml --clean speech/ --noise noise/ --out runs/cnn1d
dlsp denoise eval --model runs/cnn1d/best.pt --data mixes/
dlsp denoise export --model runs/cnn1d/best.pt -o cnn1d.onnx"""


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command_group(
        subparsers, "denoise", "train, run, export and evaluate speech denoisers",
        "Speech denoising on STFT magnitudes.",
        EXAMPLES, (train, run, export, eval, average),
    )

"""`dlsp denoise average`: one model from the mean weights of several fine-tuned ones (a model soup)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command
from dlsp.errors import DlspError

EXAMPLES = """
dlsp denoise average runs/ft_si_sdr/best.pt runs/ft_mixed/best.pt -o soup.pt
dlsp denoise eval --model soup.pt --data mixes/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "average", "average the weights of several denoisers (a model soup)", EXAMPLES,
                         description="Write one denoiser whose weights are the mean of the given model files'. "
                                     "They must be the same model (arguments, sample rate, STFT), best fine-tuned "
                                     "from one starting model (train.init_from) with different settings: such "
                                     "averages often beat each of them. Evaluate the result before trusting it.")
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL", help="denoiser model files (two or more)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="model file to write (.pt)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.denoise.model_file import average_denoisers, save_denoiser

    if args.output.resolve() in {path.resolve() for path in args.models}:
        raise DlspError("output would overwrite one of the models being averaged", args.output)
    averaged = average_denoisers(args.models)
    config = {**averaged.config, "averaged_from": [str(path) for path in args.models]}
    path = save_denoiser(args.output, averaged.model, averaged.name, sample_rate=averaged.sample_rate,
                         stft=averaged.stft, config=config)
    print(f"wrote {path}: the mean of {len(args.models)} {averaged.name} denoisers")
    return 0

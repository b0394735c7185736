"""`dlsp speaker ensemble`: one model file embedding with several trained speaker encoders at once."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command, add_device_option
from dlsp.cli.speaker.train import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "ensemble", "combine trained speaker encoders (e.g. two seeds) into one model file",
        "dlsp speaker ensemble runs/spk_a/best.pt runs/spk_b/best.pt --data $DLSP_DATA/speech/speechocean762 "
        "$DLSP_DATA/speech/arabic_commands --out speaker_ensemble.pt",
        description="Write a model file that embeds a recording with every given encoder and puts their unit "
                    "embeddings side by side (scaled so the cosine is the mean of the members' cosines: encoders "
                    "trained apart, say with another seed, make partly different mistakes). Weights are stored at "
                    "half precision. The ensemble gets its own AS-norm cohort and thresholds, set as training sets "
                    "them (the first model's recipe: score section, training and validation speakers), so --data "
                    "must hold the data the models were trained on. The members must take one sample rate and "
                    "embed alike (trimming, windows). Use the file with --model, or publish it.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="two or more speaker model files")
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR",
                        help="the datasets the models were trained on (training and validation speakers)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="layout of the --data folders")
    parser.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.fileio import check_writable
    from dlsp.release import ensemble_speakers

    check_writable(args.out)  # before any model is loaded or data embedded
    result = ensemble_speakers(args.models, args.data, args.out, args.format, args.device)
    corpora = ", ".join(f"{key.removeprefix('val_eer_')} {100 * value:.2f}%" for key, value in result.items()
                        if key.startswith("val_eer_"))
    print(f"wrote {args.out} ({result['bytes'] / 2**20:.1f} MB, {len(args.models)} members): validation EER "
          f"{100 * result['val_eer']:.2f}% ({corpora}); threshold {result['score_threshold']:.3f} "
          f"({result['score_kind']})")
    return 0

"""`dlsp denoise train`: train a denoiser from a recipe on clean+noise folders or clean/noisy pairs."""

from __future__ import annotations

import argparse
import os

from dlsp.cli.common import add_command, add_tracking_flags
from dlsp.cli.train_common import (
    EXISTING_FOLDER,
    add_config_flags,
    add_run_folder_flags,
    config_from_flags,
    data_inputs,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "train", "train a denoiser (recipe + data folders -> run folder with best.pt)",
        "dlsp denoise train --recipe recipes/denoise_cnn1d.yaml --clean speech/ --noise noise/ --out runs/cnn1d\n"
        "dlsp denoise train --pairs voicebank/ --out runs/vb --set train.loss=si_sdr --set train.lr=3e-4\n"
        "dlsp denoise train --recipe recipes/denoise_default.yaml --clean a/ b/ --noise n/ --cache cache/ --out r\n"
        "dlsp denoise train --out runs/cnn1d --resume   # continue after an interruption (data folders remembered)\n"
        "dlsp denoise train --recipe recipes/denoise_cnn1d.yaml --clean s/ --noise n/ --out runs/cnn1d --overwrite\n"
        "dlsp denoise train --recipe recipes/denoise_gru.yaml --clean a/ --noise n/ --out runs/gru --track mlflow",
        description="Train a denoiser. With --clean/--noise, speech and noise are mixed on the fly with a fresh "
                    "SNR, level and noise crop for every segment of every epoch; with --pairs, aligned "
                    "clean/noisy recordings are cut into random segments. Speakers (and noise recordings) are "
                    "disjoint across train/val/test. The run folder gets config.yaml, metrics.jsonl, best.pt "
                    "(the model file for 'dlsp denoise run --model'), last.pt (for --resume), loss.png. "
                    + EXISTING_FOLDER,
    )
    parser.add_argument("--clean", nargs="+", metavar="DIR", help="clean speech folder(s)")
    parser.add_argument("--noise", nargs="+", metavar="DIR", help="noise folder(s)")
    parser.add_argument("--pairs", metavar="DIR", help="clean/noisy pair layout (dlsp data mix output, "
                                                       "VoiceBank-DEMAND, clean/ + noisy/)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--cache", metavar="DIR", help="cache decoded audio here (PREPROCESSED/{train,"
                                                       "validation,test}) so repeated runs start at once")
    add_run_folder_flags(parser)
    add_config_flags(parser, "denoise", "train.lr=3e-4 or model.args={context: 4}")
    add_tracking_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.denoise.train import DenoiseConfig, load_data, train_run
    from dlsp.train.run_folder import check_run_folder
    from dlsp.train.tracking import make_tracker

    config = config_from_flags(DenoiseConfig, args)
    check_run_folder(args.out, args.resume, args.overwrite)  # before the audio loads and the model trains
    inputs = data_inputs(args, {"clean": [os.path.abspath(p) for p in args.clean or []],
                                "noise": [os.path.abspath(p) for p in args.noise or []],
                                "pairs": os.path.abspath(args.pairs) if args.pairs else None})
    # The cache folder is kept with them (a cache given now wins).
    inputs["cache"] = os.path.abspath(args.cache) if args.cache else inputs.get("cache")
    data = load_data(config, clean=inputs.get("clean") or None, noise=inputs.get("noise") or None,
                     pairs=inputs.get("pairs"), cache=inputs.get("cache"), progress=not args.quiet, log=print)
    tracker = make_tracker(args.track, args.out, args.track_uri)
    _, result = train_run(config, data, args.out, resume=args.resume, overwrite=args.overwrite,
                          progress=not args.quiet, tracker=tracker, inputs=inputs)
    shipped, best = result.shipped()
    print(f"{len(result.history)} epochs ({result.stopped}); {shipped}: "
          f"val loss {best.get('val_loss', float('nan')):.4g}, "
          f"val SI-SDR {best.get('val_si_sdr', float('nan')):.2f} dB "
          f"({best.get('val_si_sdr_improvement', float('nan')):+.2f} dB over noisy)")
    print(f"model: {args.out}/best.pt   curves: {args.out}/loss.png")
    return 0

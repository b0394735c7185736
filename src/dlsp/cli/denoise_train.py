"""`dlsp denoise train`: train a denoiser from a recipe on clean+noise folders or clean/noisy pairs."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command, add_tracking_flags, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "train", "train a denoiser (recipe + data folders -> run folder with best.pt)",
        "dlsp denoise train --recipe recipes/denoise_cnn1d.yaml --clean speech/ --noise noise/ --out runs/cnn1d\n"
        "dlsp denoise train --pairs voicebank/ --out runs/vb --set train.loss=si_sdr --set train.lr=3e-4\n"
        "dlsp denoise train --recipe recipes/denoise_default.yaml --clean a/ b/ --noise n/ --cache cache/ --out r\n"
        "dlsp denoise train --out runs/cnn1d --resume   # continue after an interruption\n"
        "dlsp denoise train --recipe recipes/denoise_gru.yaml --clean a/ --noise n/ --out runs/gru --track mlflow",
        description="Train a denoiser. With --clean/--noise, speech and noise are mixed on the fly with a fresh "
                    "SNR, level and noise crop for every segment of every epoch; with --pairs, aligned "
                    "clean/noisy recordings are cut into random segments. Speakers (and noise recordings) are "
                    "disjoint across train/val/test. The run folder gets config.yaml, metrics.jsonl, best.pt "
                    "(the model file for 'dlsp denoise run --model'), last.pt (for --resume), loss.png.",
    )
    parser.add_argument("--recipe", help="YAML recipe (see recipes/denoise_*.yaml); defaults otherwise")
    parser.add_argument("--clean", nargs="+", metavar="DIR", help="clean speech folder(s)")
    parser.add_argument("--noise", nargs="+", metavar="DIR", help="noise folder(s)")
    parser.add_argument("--pairs", metavar="DIR", help="clean/noisy pair layout (dlsp data mix output, "
                                                       "VoiceBank-DEMAND, clean/ + noisy/)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train.lr=3e-4 or model.args={context: 4}")
    parser.add_argument("--cache", metavar="DIR", help="cache decoded audio here (PREPROCESSED/{train,"
                                                       "validation,test}) so repeated runs start at once")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    parser.add_argument("--epochs", type=positive_int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seconds", type=positive_float, help="training time budget (train.max_seconds)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (train.device)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_tracking_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.config import load_config, load_recipe
    from dlsp.denoise.train import DenoiseConfig, load_data, train_run
    from dlsp.fileio import check_writable
    from dlsp.train.tracking import make_tracker

    overrides = list(args.overrides)
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    overrides += [f"train.max_seconds={args.seconds}"] if args.seconds else []
    overrides += [f"train.device={args.device}"] if args.device else []
    recipe = args.recipe
    if args.resume and recipe is None:
        # A resumed run continues with the config it started with.
        from pathlib import Path

        saved = Path(args.out) / "config.yaml"
        recipe = str(saved) if saved.exists() else None
    if recipe is not None:
        load_recipe(recipe)  # fail on a bad recipe before loading any audio
    config = load_config(DenoiseConfig, recipe, overrides)
    check_writable(args.out, folder=True)  # before the audio loads and the model trains
    data = load_data(config, clean=args.clean, noise=args.noise, pairs=args.pairs, cache=args.cache,
                     progress=not args.quiet, log=print)
    tracker = make_tracker(args.track, args.out, args.track_uri)
    _, result = train_run(config, data, args.out, resume=args.resume, progress=not args.quiet, tracker=tracker)
    best = result.history[result.best_epoch] if result.history else {}
    print(f"{len(result.history)} epochs ({result.stopped}); best epoch {result.best_epoch + 1}: "
          f"val loss {result.best_val_loss:.4g}, val SI-SDR {best.get('val_si_sdr', float('nan')):.2f} dB "
          f"({best.get('val_si_sdr_improvement', float('nan')):+.2f} dB over noisy)")
    print(f"model: {args.out}/best.pt   curves: {args.out}/loss.png")
    return 0

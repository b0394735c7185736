"""`dlsp speaker train`: train a speaker encoder on speaker-labelled recordings."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command, positive_float, positive_int

FORMATS = ("auto", "folders", "speakers", "fsdd", "speech-commands", "librispeech", "manifest")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "train", "train a speaker encoder (data folders -> run folder with best.pt)",
        "dlsp speaker train --data speakers/ --format speakers --out runs/speaker\n"
        "dlsp speaker train --recipe recipes/speaker_default.yaml --data $DLSP_DATA/speech/arabic_commands "
        "$DLSP_DATA/speech/fsdd --out runs/speaker_default\n"
        "dlsp speaker train --data LibriSpeech/ --out runs/libri --set train.objective=bce --epochs 20\n"
        "dlsp speaker train --out runs/speaker --resume   # continue after an interruption",
        description="Train a bidirectional-GRU speaker encoder. Speakers are split disjointly into training and "
                    "validation (a dataset's own speaker split is kept; data.val_speakers / data.test_speakers "
                    "name speakers explicitly); every epoch the validation EER over all pairs of validation "
                    "clips is measured and best.pt keeps the epoch with the lowest, with its EER threshold for "
                    "'dlsp speaker verify'. Objectives (train.objective): amsoftmax (default), bce and "
                    "contrastive (Siamese pairs), ge2e and amsoftmax_ge2e (batches of train.per_speaker "
                    "segments of each speaker). Several --data folders are corpora: data.balance draws them "
                    "evenly (corpus) or by the square root of their speaker counts (sqrt), the validation EER is "
                    "the mean of each corpus's, and data.crop_seconds: [1, 4] trains on crops of 1-4 s. With "
                    "score.cohort the model file also stores a cohort of training-speaker embeddings for AS-norm "
                    "scoring, its threshold on those scores and their false-accept table. The run folder gets "
                    "config.yaml, splits.json, metrics.jsonl, best.pt, last.pt (for --resume), curves.png and "
                    "results.json.",
    )
    parser.add_argument("--data", nargs="+", metavar="DIR", help="dataset folder(s) or manifest CSV(s)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="layout of the --data folders")
    parser.add_argument("--recipe", help="YAML recipe (see recipes/speaker_*.yaml); defaults otherwise")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train.lr=3e-4 or train.objective=bce")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    parser.add_argument("--epochs", type=positive_int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seconds", type=positive_float, help="training time budget (train.max_seconds)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (train.device)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.config import load_config, load_recipe
    from dlsp.errors import DlspError
    from dlsp.fileio import check_writable
    from dlsp.speaker.train import SpeakerTrainConfig, load_data, train_run

    if not args.data:
        raise DlspError("training data missing: give --data DIR [DIR ...]")
    overrides = list(args.overrides)
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    overrides += [f"train.max_seconds={args.seconds}"] if args.seconds else []
    overrides += [f"train.device={args.device}"] if args.device else []
    if args.resume and not (Path(args.out) / "last.pt").exists():
        raise DlspError("nothing to resume (no last.pt); start a new run without --resume", args.out)
    recipe = args.recipe
    if args.resume and recipe is None:
        saved = Path(args.out) / "config.yaml"  # a resumed run continues with the config it started with
        recipe = str(saved) if saved.exists() else None
    if recipe is not None:
        load_recipe(recipe)  # fail on a bad recipe before loading any audio
    config = load_config(SpeakerTrainConfig, recipe, overrides)
    check_writable(args.out, folder=True)  # before the audio loads and the model trains
    data = load_data(config, args.data, args.format, progress=not args.quiet)
    _, result = train_run(config, data, args.out, resume=args.resume, progress=not args.quiet)
    best = result.history[result.best_epoch] if result.history else {}
    corpora = {k[len("val_eer_"):]: v for k, v in best.items() if k.startswith("val_eer_")}
    print(f"{len(result.history)} epochs ({result.stopped}); best epoch {result.best_epoch + 1}: validation EER "
          f"{100 * best.get('val_eer', float('nan')):.2f}% at threshold {best.get('val_threshold', float('nan')):.3f}"
          + (" (mean of " + ", ".join(f"{name} {100 * rate:.2f}%" for name, rate in corpora.items()) + ")"
             if len(corpora) > 1 else ""))
    print(f"model: {args.out}/best.pt   curves: {args.out}/curves.png")
    return 0

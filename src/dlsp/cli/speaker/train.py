"""`dlsp speaker train`: train a speaker encoder on speaker-labelled recordings."""

from __future__ import annotations

import argparse
import os

from dlsp.cli.common import add_command
from dlsp.cli.train_common import (
    EXISTING_FOLDER,
    add_config_flags,
    add_run_folder_flags,
    config_from_flags,
    data_inputs,
)

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
                    "results.json. " + EXISTING_FOLDER,
    )
    parser.add_argument("--data", nargs="+", metavar="DIR", help="dataset folder(s) or manifest CSV(s)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="layout of the --data folders")
    parser.add_argument("--out", required=True, help="run folder")
    add_run_folder_flags(parser)
    add_config_flags(parser, "speaker", "train.lr=3e-4 or train.objective=bce")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.errors import DlspError
    from dlsp.speaker.train import SpeakerTrainConfig, load_data, train_run
    from dlsp.train.run_folder import check_run_folder

    inputs = data_inputs(args, {"data": [os.path.abspath(p) for p in args.data or []]})
    if not inputs.get("data"):
        raise DlspError("training data missing: give --data DIR [DIR ...]")
    inputs["format"] = args.format if args.format != "auto" else inputs.get("format", "auto")
    config = config_from_flags(SpeakerTrainConfig, args)
    check_run_folder(args.out, args.resume, args.overwrite)  # before the audio loads and the model trains
    data = load_data(config, inputs["data"], inputs["format"], progress=not args.quiet)
    _, result = train_run(config, data, args.out, resume=args.resume, overwrite=args.overwrite,
                          progress=not args.quiet, inputs=inputs)
    shipped, best = result.shipped()
    corpora = {k[len("val_eer_"):]: v for k, v in best.items() if k.startswith("val_eer_")}
    print(f"{len(result.history)} epochs ({result.stopped}); {shipped}: validation EER "
          f"{100 * best.get('val_eer', float('nan')):.2f}% at threshold {best.get('val_threshold', float('nan')):.3f}"
          + (" (mean of " + ", ".join(f"{name} {100 * rate:.2f}%" for name, rate in corpora.items()) + ")"
             if len(corpora) > 1 else ""))
    print(f"model: {args.out}/best.pt   curves: {args.out}/curves.png")
    return 0

"""`dlsp classify train`: train a clip classifier on a labelled audio folder."""

from __future__ import annotations

import argparse
import os

from dlsp.cli.classify.common import add_data_arguments, cache_dir
from dlsp.cli.common import add_command
from dlsp.cli.train_common import (
    EXISTING_FOLDER,
    add_config_flags,
    add_run_folder_flags,
    config_from_flags,
    data_inputs,
)

MODELS = ("mlp", "cnn", "lstm")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "train", "train a clip classifier (labelled folder -> run folder with best.pt)",
        "dlsp classify train --data fsdd/ --model cnn --out runs/digits\n"
        "dlsp classify train --data genres/ --recipe recipes/classify_genre_cnn.yaml --out runs/genre\n"
        "dlsp classify train --data keywords/ --model lstm --set data.split=speaker --set train.lr=1e-3 --out r\n"
        "dlsp classify train --data fsdd/ --model cnn --set augment.noise_dir=noise/ --out runs/noisy\n"
        "dlsp classify train --out runs/digits --resume   # continue after an interruption (same data)",
        description="Train a classifier on MFCC segments of labelled clips. Clips are split by the dataset's "
                    "official split, by speaker, or by clip (data.split), never by segment; validation clips "
                    "come from the training clips and pick the best epoch (early stopping). Features are cached "
                    "so a second run starts at once. The run folder gets config.yaml, metrics.jsonl, best.pt "
                    "(the model file), last.pt (for --resume), curves.png, splits.json, results.json and "
                    "confusion.png (test clips). " + EXISTING_FOLDER,
    )
    add_data_arguments(parser, required=False)  # a resumed run finds its data itself
    parser.add_argument("--model", choices=MODELS, help="architecture (model.name); default: the recipe's, or cnn")
    parser.add_argument("--out", required=True, help="run folder")
    add_run_folder_flags(parser)
    add_config_flags(parser, "classify", "train.lr=1e-3 or features.n_mfcc=20")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.classify.train import ClassifyConfig, load_data, train_run
    from dlsp.errors import DlspError
    from dlsp.train.run_folder import check_run_folder

    inputs = data_inputs(args, {"data": os.path.abspath(args.data) if args.data else None})
    if not inputs.get("data"):
        raise DlspError("training data missing: give --data DIR")
    inputs["format"] = args.format if args.format != "auto" else inputs.get("format", "auto")
    config = config_from_flags(ClassifyConfig, args, [f"model.name={args.model}"] if args.model else None)
    check_run_folder(args.out, args.resume, args.overwrite)  # before the features are computed and the model trains
    data = load_data(config, inputs["data"], inputs["format"], cache_dir(args), progress=not args.quiet)
    for line in data.report:
        print(line, flush=True)
    _, result, results = train_run(config, data, args.out, resume=args.resume, overwrite=args.overwrite,
                                   progress=not args.quiet, inputs=inputs)
    print(f"{results['epochs']} epochs ({results['stopped']}, {results['train_seconds']:.0f} s); "
          f"{result.shipped()[0]}: val accuracy {results['val_accuracy']:.1%} (segments), "
          f"{results['val_clip_accuracy']:.1%} (clips)")
    if "test" in results:
        test = results["test"]
        print(f"test: {test['clips']} clips, accuracy {test['accuracy']:.1%} (segments), "
              f"{test['clip_accuracy']:.1%} (clips), macro F1 {test['macro_f1']:.3f}")
    print(f"model: {args.out}/best.pt   curves: {args.out}/curves.png")
    return 0

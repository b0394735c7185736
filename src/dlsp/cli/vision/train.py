"""`dlsp vision train RECIPE`: run one image study into a run folder."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command, add_device_option, positive_int
from dlsp.cli.train_common import add_run_folder_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "train", "run an image study from a recipe (table + PNGs + results.json in the run folder)",
        "dlsp vision train recipes/vision_mnist_mlp.yaml --data $DLSP_DATA/images/mnist --out runs/mnist\n"
        "dlsp vision train recipes/vision_compression.yaml --data $DLSP_DATA/images/mnist --out runs/lowrank "
        "--set compression.base_model=runs/mnist/best.pt\n"
        "dlsp vision train recipes/vision_ssl.yaml --data $DLSP_DATA/images/cifar10 --out runs/ssl "
        "--set ssl.pretext=rotnet\n"
        "dlsp vision train recipes/vision_cifar_augment.yaml --quick --out /tmp/smoke   # digits, < 1 minute",
        description="Run a study: mnist_mlp (MLP, best examples, PCA/t-SNE of every layer), compression (low-rank "
                    "SVD / scratch / fine-tune, accuracy vs rank), cifar_augment (original vs 4x augmented vs "
                    "on-the-fly), ssl (pretext task then transfer with 500 labels vs scratch). The run folder gets "
                    "config.yaml, metrics*.jsonl, best.pt, the PNGs, results.md and results.json. A run folder "
                    "that is not empty is refused unless --overwrite (remove the previous study's results and "
                    "start over); a study does not resume.",
    )
    parser.add_argument("recipe", help="YAML recipe (recipes/vision_*.yaml)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--data", metavar="DIR", help="dataset folder: MNIST IDX files, cifar-10-batches-py, or "
                                                      "train/<class>/ + test/<class>/ images (data.dir)")
    parser.add_argument("--quick", action="store_true", help="shrink the study to the embedded digits and a few "
                                                             "epochs of a small model (smoke run, < 1 minute)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train.epochs=5 or compression.rank=10")
    parser.add_argument("--epochs", type=positive_int, help="shortcut for --set train.epochs=N")
    add_device_option(parser, "train.device")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_run_folder_flags(parser, resume=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.config import load_config, load_recipe
    from dlsp.train.run_folder import check_run_folder
    from dlsp.vision.config import VisionConfig
    from dlsp.vision.run import run_study

    load_recipe(args.recipe)  # a bad recipe fails before any data loads
    overrides = list(args.overrides)
    overrides += [f"data.dir={args.data}"] if args.data else []
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    overrides += [f"train.device={args.device}"] if args.device else []
    config = load_config(VisionConfig, args.recipe)
    check_run_folder(args.out, overwrite=args.overwrite, resumable=False)  # before the data loads and the models train
    results = run_study(config, args.out, quick_mode=args.quick, overrides=overrides, progress=not args.quiet,
                        overwrite=args.overwrite)
    print(f"test accuracy {results['test_accuracy']:.4f}, {results['params']:,} parameters; "
          f"results: {args.out}/results.md, {args.out}/results.json")
    return 0

"""`dlsp classify study-optimizers`: full-batch vs mini-batch vs stochastic gradient descent, same time budget."""

from __future__ import annotations

import argparse

from dlsp.cli.classify.common import add_data_arguments, cache_dir
from dlsp.cli.common import add_command, positive_float
from dlsp.cli.train_common import add_config_flags, config_from_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "study-optimizers", "compare full-batch, mini-batch and batch-1 gradient descent",
        "dlsp classify study-optimizers --data fsdd/ --seconds 60 --out runs/optimizers\n"
        "dlsp classify study-optimizers --data fsdd/ --model cnn --optimizer adam --lr 1e-3 --out runs/opt_adam",
        description="Train the same model from the same initial weights with full-batch gradient descent, "
                    "mini-batch gradient descent (train.batch_size) and stochastic gradient descent (batch 1), "
                    "each for the same wall-clock budget (--seconds; an epoch in progress finishes). Writes "
                    "optimizers.png (training loss and validation accuracy against epochs and against seconds), "
                    "optimizers.md (the table) and optimizers.json to --out.",
    )
    add_data_arguments(parser)
    parser.add_argument("--model", choices=("mlp", "cnn", "lstm"), default="mlp", help="architecture")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="update rule for every method")
    parser.add_argument("--lr", type=positive_float, help="learning rate (default 0.01 for sgd, train.lr for adam)")
    parser.add_argument("--out", required=True, help="folder for the plot and the table")
    add_config_flags(parser, "classify", "train.lr=1e-3 or features.n_mfcc=20",
                     seconds_help="wall-clock budget of each method, in seconds")
    parser.set_defaults(func=run, seconds=30.0)


def run(args: argparse.Namespace) -> int:
    from dlsp.classify.study import study_optimizers, write_study
    from dlsp.classify.train import ClassifyConfig, load_data
    from dlsp.fileio import check_writable
    from dlsp.report.tables import format_table

    config = config_from_flags(ClassifyConfig, args, [f"model.name={args.model}"])
    check_writable(args.out, folder=True)  # before the features and the trainings
    data = load_data(config, args.data, args.format, cache_dir(args), progress=not args.quiet)
    for line in data.report:
        print(line, flush=True)
    study = study_optimizers(config, data, args.seconds, args.optimizer, args.lr, progress=not args.quiet)
    written = write_study(args.out, study, f"{args.model} on {args.data}: {args.seconds:g} s per method")
    print(format_table(study.headers, study.rows))
    print(f"wrote {written['plot']}, {written['table']} and {written['json']}")
    return 0

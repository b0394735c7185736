"""`dlsp vision eval RUN`: test accuracy, macro F1 and confusion matrix of a finished run's best.pt."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from dlsp.cli.common import add_command, add_device_option

    parser = add_command(
        subparsers, "eval", "evaluate a finished vision run's best.pt on the test split of its data",
        "dlsp vision eval runs/mnist_mlp\n"
        "dlsp vision eval runs/mnist_mlp --data /elsewhere/mnist --json",
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder written by 'dlsp vision train'")
    parser.add_argument("--data", metavar="DIR", help="dataset folder (default: the one the run used)")
    add_device_option(parser)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from dlsp.report.tables import format_table
    from dlsp.vision.run import evaluate_run

    figures = evaluate_run(args.run_dir, args.data, args.device)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['data']}\ntest accuracy {figures['test_accuracy']:.4f}, macro F1 {figures['macro_f1']:.4f}")
    classes = figures["classes"]
    rows = [[name, *row] for name, row in zip(classes, figures["confusion_matrix"], strict=True)]
    print("confusion matrix (rows: true class, columns: predicted)")
    print(format_table(["true \\ predicted", *classes], rows))
    return 0

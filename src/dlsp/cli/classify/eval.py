"""`dlsp classify eval`: score a trained classifier on labelled clips (segments, clips, macro F1, confusion)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.classify.common import add_data_arguments, cache_dir
from dlsp.cli.common import add_command, add_device_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "eval", "score a classifier: segment and clip accuracy, macro F1, confusion matrix PNG",
        "dlsp classify eval runs/digits --data fsdd/\n"
        "dlsp classify eval runs/digits --data fsdd/ --split all --json scores.json\n"
        "dlsp classify eval runs/digits/best.pt --data other_speakers/ --out eval_other",
        description="Score a trained classifier. On the folder the run was trained on, only its test clips are "
                    "scored by default (--split all scores every clip); on any other folder, every clip. Writes "
                    "summary.json and confusion.png to --out (default RUN/eval); --json FILE also writes the "
                    "scores (keys accuracy = segment accuracy, clip_accuracy, macro_f1 over clips, ...).",
    )
    parser.add_argument("run", metavar="RUN", help="run folder (or its best.pt)")
    add_data_arguments(parser)
    parser.add_argument("--split", choices=("test", "val", "train", "all"), default=None,
                        help="which clips (default: the run's test split on its own data, else all)")
    parser.add_argument("--out", metavar="DIR", help="folder for summary.json and confusion.png (default RUN/eval)")
    parser.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
    add_device_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.classify.evaluate import confusion_plot, evaluate_dataset
    from dlsp.classify.inference import Classifier
    from dlsp.fileio import check_writable, write_json
    from dlsp.report.tables import format_table

    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent
    out = Path(args.out) if args.out else run_dir / "eval"
    check_writable(out, folder=True)  # before the features are computed and scored
    check_writable(args.json)
    classifier = Classifier.from_file(args.run, device=args.device)
    result = evaluate_dataset(classifier, args.data, args.format, args.split, args.run, cache_dir(args),
                              progress=not args.quiet)
    scores = result.scores
    write_json(out / "summary.json", scores)
    confusion_plot(out / "confusion.png", scores["confusion_matrix"], scores["labels"],
                   f"{classifier.name}: clip accuracy {scores['clip_accuracy']:.1%}")
    if args.json:
        write_json(args.json, scores)
    for line in result.report:
        print(line)
    print(f"scored {result.note} with {classifier.name}")
    print(format_table(["metric", "value"], [["segment accuracy", scores["accuracy"]],
                                             ["clip accuracy", scores["clip_accuracy"]],
                                             ["macro F1 (clips)", scores["macro_f1"]]]))
    print(f"wrote {out / 'summary.json'}, {out / 'confusion.png'}" + (f" and {args.json}" if args.json else ""))
    return 0

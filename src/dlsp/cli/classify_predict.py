"""`dlsp classify predict`: the three most probable labels of each audio file."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "predict", "print the most probable labels of audio files with their probabilities",
        "dlsp classify predict runs/digits one.wav two.wav\n"
        "dlsp classify predict runs/genre/best.pt song.wav --top 5",
        description="Classify each file: its segments' probabilities are averaged and the --top labels printed "
                    "with their probabilities. Files are resampled to the model's rate. A file that cannot be "
                    "read is reported and the others are still classified (exit code 2 at the end).",
    )
    parser.add_argument("run", metavar="RUN", help="run folder (or its best.pt)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    parser.add_argument("--top", type=positive_int, default=3, help="how many labels to print per file")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from dlsp.classify.evaluate import Classifier
    from dlsp.errors import DlspError

    classifier = Classifier.from_file(args.run, device=args.device)
    failed = 0
    for path in args.files:
        try:
            ranked = classifier.predict_file(path, top=args.top)
        except DlspError as exc:
            print(f"dlsp: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: " + ", ".join(f"{label} {prob:.3f}" for label, prob in ranked))
    if failed and failed == len(args.files):
        raise DlspError(f"none of the {failed} file(s) could be classified")
    return 2 if failed else 0

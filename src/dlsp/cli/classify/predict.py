"""`dlsp classify predict`: the three most probable labels of each audio file."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_command, add_device_option, count_noun, positive_int, skip_warning


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "predict", "print the most probable labels of audio files with their probabilities",
        "dlsp classify predict runs/digits one.wav two.wav\n"
        "dlsp classify predict runs/genre/best.pt song.wav --top 5",
        description="Classify each file: its segments' probabilities are averaged and the --top labels printed "
                    "with their probabilities. Files are resampled to the model's rate. A file that cannot be "
                    "read is listed and skipped and the others are still classified (exit code 1 at the end; 2 "
                    "when a single file was given or none could be classified).",
    )
    parser.add_argument("run", metavar="RUN", help="run folder (or its best.pt)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    parser.add_argument("--top", type=positive_int, default=3, help="how many labels to print per file")
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from dlsp.classify.inference import Classifier
    from dlsp.errors import DlspError

    classifier = Classifier.from_file(args.run, device=args.device)
    if len(args.files) == 1:  # one named file: its failure is the command's error (exit 2)
        _print(args.files[0], classifier.predict_file(args.files[0], top=args.top))
        return 0
    failed = 0
    for path in args.files:
        try:
            ranked = classifier.predict_file(path, top=args.top)
        except DlspError as exc:
            skip_warning(path, exc.problem)
            failed += 1
            continue
        _print(path, ranked)
    if failed == len(args.files):
        raise DlspError(f"none of the {failed} files could be classified")
    if failed:
        print(f"dlsp: {failed} of {count_noun(len(args.files), 'file')} skipped (listed above)", file=sys.stderr)
        return 1
    return 0


def _print(path: str, ranked) -> None:
    print(f"{path}: " + ", ".join(f"{label} {prob:.3f}" for label, prob in ranked))

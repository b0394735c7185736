"""`dlsp report`: a self-contained HTML page for a run folder, or several compared."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "report", "one self-contained HTML page of a run (or runs side by side)",
        "dlsp report runs/gru                      # writes runs/gru/report.html\n"
        "dlsp report runs/gru -o gru.html\n"
        "dlsp report --compare runs/gru runs/cnn1d runs/unet -o compare.html",
        description="A summary of the metrics that matter (readable names and units), every metric's curve, the "
                    "task's figures (spectrograms, confusion matrix, DET curve, embedding maps...), audio players "
                    "for the examples in samples/, and last the raw values (results.json, metrics.jsonl, config), "
                    "with images and audio embedded so the single file can be shared. --compare shows several "
                    "runs' results, config differences and curves together.",
    )
    parser.add_argument("run", nargs="?", help="run folder")
    parser.add_argument("--compare", nargs="+", metavar="RUN", help="run folders to compare")
    parser.add_argument("-o", "--out", help="HTML file (default: RUN/report.html, or compare.html)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.errors import DlspError
    from dlsp.fileio import check_writable
    from dlsp.report.run_report import build_report

    if bool(args.run) == bool(args.compare):
        raise DlspError("give one run folder, or --compare RUN RUN ...")
    runs = [args.run] if args.run else args.compare
    out = args.out or (str(Path(args.run) / "report.html") if args.run else "compare.html")
    check_writable(out)
    path = build_report(runs, out)
    print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0

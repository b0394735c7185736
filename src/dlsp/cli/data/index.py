"""`dlsp data index`: list a dataset's files with labels, speakers and splits, and summarize them."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command

EXAMPLES = """
dlsp data index $DLSP_DATA/speech/fsdd
dlsp data index $DLSP_DATA/speech/arabic_commands --split 0.8,0.1,0.1 --seed 1 -o commands.csv
dlsp data index my_sounds --format folders --split 0.7,0.15,0.15 --ignore-existing
dlsp data index voicebank --format pairs -o voicebank/pairs.csv
dlsp data index index.csv --allow-outside
"""

DESCRIPTION = """Index a dataset: one row per audio file with its label, speaker, duration, sample rate and
split, read from the folder layout and the file headers (nothing is decoded). Prints a summary table and
optionally writes the index as CSV (pairs formats write clean,noisy columns instead).

formats (auto tries them in the order given in dlsp.data.index):
  folders          <label>/*.wav
  speakers         <speaker>/**/*.wav
  fsdd             <digit>_<speaker>_<take>.wav (official split: takes 0-4 test)
  speech-commands  <keyword>/<speaker>_nohash_<n>.wav or <keyword>/<speaker id>_NO_<take>.wav
  gtzan            genres/<genre>/*.au|.wav
  librispeech      <speaker>/<chapter>/*.flac
  pairs            clean*/ + noisy*/ folders, or manifest.csv with clean and noisy columns
  manifest         CSV with path[,label,speaker,split] columns

--split makes a speaker-disjoint train/val/test split (no speaker in two splits); files that already have a
split (fsdd, speech commands, manifests) keep it unless --ignore-existing."""


# Same as dlsp.data.index.FORMATS (a test checks); repeated so `dlsp --help` needs no audio libraries.
FORMATS = ("auto", "folders", "speakers", "fsdd", "speech-commands", "gtzan", "librispeech", "pairs",
           "manifest")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "index", "index a dataset folder: labels, speakers, splits, hours",
                         EXAMPLES, description=DESCRIPTION)
    parser.add_argument("dir", metavar="DIR", help="dataset folder, or a manifest CSV")
    parser.add_argument("--format", default="auto", choices=FORMATS, help="dataset layout")
    parser.add_argument("--split", type=split_fractions, metavar="TRAIN,VAL,TEST",
                        help="make a speaker-disjoint split with these fractions of files (e.g. 0.8,0.1,0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the speaker shuffle for --split")
    parser.add_argument("--ignore-existing", action="store_true",
                        help="with --split, re-split files that already carry an official split")
    parser.add_argument("--allow-outside", action="store_true",
                        help="let manifests list absolute paths and paths outside their folder")
    parser.add_argument("-o", "--output", metavar="CSV", help="write the index to this CSV file")
    parser.set_defaults(func=run)


def split_fractions(text: str) -> tuple[float, float, float]:
    """Parse "0.8,0.1,0.1" (or "0.9,0.1", test 0) into three non-negative fractions with a positive sum."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.8,0.1,0.1, got {text}") from None
    if len(values) not in (2, 3) or any(not v >= 0 for v in values) or not 0 < sum(values) < float("inf"):
        raise argparse.ArgumentTypeError(f"expected 2 or 3 non-negative fractions (0.8,0.1,0.1), got {text}")
    return (*values, 0.0) if len(values) == 2 else tuple(values)


def run(args: argparse.Namespace) -> int:
    from dlsp.data import index, pairs
    from dlsp.fileio import check_writable

    check_writable(args.output)  # before a large dataset is indexed
    fmt = index.detect_format(args.dir) if args.format == "auto" else args.format
    if fmt == "pairs":
        items = pairs.index_pairs(args.dir, allow_outside=args.allow_outside)
    else:
        items = index.index_dataset(args.dir, fmt, allow_outside=args.allow_outside)
    if args.split:
        splits = index.speaker_disjoint_split(items, args.split, args.seed,
                                              respect_existing=not args.ignore_existing)
        items = [item for group in splits.values() for item in group]
    print(format_summary(index.summarize(items), args.dir, fmt))
    if args.output:
        writer = pairs.write_pairs_csv if fmt == "pairs" else index.write_index_csv
        items = sorted(items, key=_item_path)
        path = writer(items, args.output)
        print(f"wrote {len(items)} rows to {path}")
        folder = path.absolute().parent
        outside = sum(not _item_path(item).absolute().is_relative_to(folder) for item in items)
        if outside:
            print(f"note: {outside} paths lie outside {folder} and were written absolute; "
                  "reading the CSV back needs --allow-outside")
    return 0


def _item_path(item) -> Path:  # AudioItem or PairItem
    return getattr(item, "path", None) or item.noisy


def format_summary(summary: dict, root: str, fmt: str) -> str:
    """The summary table printed by `dlsp data index`."""
    rates = ", ".join(f"{rate} Hz ({count})" for rate, count in summary["sample_rates"].items())
    per_label = summary["per_label"].values()
    label_range = f" ({min(per_label)}-{max(per_label)} files each)" if per_label else ""
    lines = [
        f"dataset   {root}  (format {fmt})",
        f"files     {summary['files']}  ({_duration_text(summary['hours'])})",
        f"rates     {rates}",
        f"labels    {summary['labels'] or 'none'}{label_range}",
        f"speakers  {summary['speakers'] or 'unknown'}",
        "",
        f"{'split':<11}{'files':>8}{'hours':>9}{'labels':>8}{'speakers':>10}",
    ]
    for split, counts in summary["splits"].items():
        lines.append(f"{split:<11}{counts['files']:>8}{counts['hours']:>9.2f}{counts['labels']:>8}"
                     f"{counts['speakers']:>10}")
    return "\n".join(lines)


def _duration_text(hours: float) -> str:
    return f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.1f} min"

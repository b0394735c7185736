"""`dlsp data mix`: mix clean speech with noise at random SNRs into train/val/test (MS-SNSD style)."""

from __future__ import annotations

import argparse
import re

from dlsp.cli.common import add_command, count_noun, skip_warning

EXAMPLES = """
dlsp data mix --clean corpus/speech --noise corpus/noise --out noisy
dlsp data mix --clean $DLSP_DATA/speech/fsdd --noise $DLSP_DATA/noise/household_street \\
    --out noisy --hours 1
dlsp data mix --clean speech --noise noise --out noisy --snr -5:20 --count 2000 --clip-seconds 3
dlsp data mix --clean speech --noise noise --out noisy --snr 0,5,10 --split 0.7,0.15,0.15 --sr 8000
"""

DESCRIPTION = """\
Mix clean speech with noise at random SNRs into a corpus for speech enhancement (in the manner of MS-SNSD).
Writes OUT/clean, OUT/noise and OUT/noisy (16-bit wav; noisy = clean + noise, never clipped), OUT/README.md
and, last, OUT/manifest.csv. Speakers are disjoint across train/val/test, and so are the noise files when
there are at least 3, so the test split holds unseen speakers and unseen noise. The same seed gives the same
corpus. Unusable clean or noise files are skipped and listed (exit code 1); with no usable clean or no usable
noise file nothing is written (exit code 2)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "mix", "mix clean speech with noise at random SNRs (train/val/test)",
                         EXAMPLES, description=DESCRIPTION)
    # Let values such as "-5:20" or "-5,0,5" follow a flag instead of being taken for flags themselves.
    parser._negative_number_matcher = re.compile(r"^-\.?\d")
    parser.add_argument("--clean", required=True, metavar="DIR", help="folder of clean speech")
    parser.add_argument("--noise", required=True, metavar="DIR", help="folder of noise recordings")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (new, empty, or an earlier 'dlsp data mix' output)")
    parser.add_argument("--snr", default="-5:20", metavar="LO:HI|V,V,...",
                        help="SNR in dB: uniform in LO:HI, or one of a list")
    parser.add_argument("--count", type=int, metavar="N",
                        help="number of mixtures; 100 when neither --count nor --hours is given")
    parser.add_argument("--hours", type=float, metavar="H",
                        help="make this many hours of audio instead of --count")
    parser.add_argument("--sr", type=int, default=16000, metavar="HZ", help="output sample rate")
    parser.add_argument("--seed", type=int, default=0, help="random seed: splits, file order, SNRs, crops")
    parser.add_argument("--split", default="0.8,0.1,0.1", metavar="TRAIN,VAL,TEST",
                        help="fractions of mixtures (and of speakers) per split")
    parser.add_argument("--clip-seconds", type=float, metavar="S",
                        help="crop or pad every clean clip to S seconds; unset keeps each clip's length")
    parser.add_argument("--clean-format", default="auto", metavar="F",
                        help="layout of --clean as for 'dlsp data index'; auto reads plain subfolders as "
                             "one per speaker")
    parser.add_argument("--level-db", metavar="LO:HI|V,V,...",
                        help="set each mixture's RMS level in dBFS, e.g. -35:-15; unset keeps the "
                             "recordings' levels")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.data.noisy_corpus import corpus_summary, make_noisy_corpus, parse_split_fractions

    skipped = {"clean": 0, "noise": 0}

    def on_skip(path, kind: str, problem: str) -> None:
        skipped[kind] += 1
        skip_warning(path, f"{problem} ({kind} file)")

    manifest = make_noisy_corpus(
        args.clean, args.noise, args.out, snr=args.snr, count=args.count, hours=args.hours,
        sample_rate=args.sr, seed=args.seed, splits=parse_split_fractions(args.split),
        clip_seconds=args.clip_seconds, clean_format=args.clean_format, progress=not args.no_progress,
        level_db=args.level_db, on_skip=on_skip,
    )
    summary = corpus_summary(manifest)
    print(f"{summary['mixtures']} mixtures, {summary['hours']:.3f} h at {summary['sample_rate']} Hz "
          f"in {args.out}")
    for name, split in summary["splits"].items():
        print(f"  {name:<5} {split['mixtures']:>6} mixtures  {split['hours']:7.3f} h  "
              f"{split['speakers']:>4} speakers  {split['noise_files']:>4} noise files")
    noise = "disjoint (test noise unseen)" if summary["noise_disjoint"] else "shared across splits"
    print(f"SNR {summary['snr_min']:.1f} to {summary['snr_max']:.1f} dB; speakers disjoint; "
          f"noise files {noise}")
    print(f"manifest: {manifest}")
    if skipped["clean"] or skipped["noise"]:
        print(f"skipped {count_noun(skipped['clean'], 'clean file')} and {count_noun(skipped['noise'], 'noise file')}"
              " (listed above)")
        return 1
    return 0

"""`dlsp data synth`: write the synthetic speech and noise corpus (dlsp's default data, never downloaded)."""

from __future__ import annotations

import argparse
import sys
import time

from dlsp.cli.common import add_command, positive_float, positive_int

EXAMPLES = """
dlsp data synth --out data/synth
dlsp data synth --out data/synth --seed 1 --speakers 16 --utterances 20
dlsp data synth --out data/synth8k --sr 8000 --noise-seconds 30
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "synth", "synthesize a speech and noise corpus (deterministic, nothing downloaded)",
        EXAMPLES, description=(
            "Synthesize speech of several synthetic speakers (OUT/speech/<speaker>/<speaker>_<nnn>.wav) and "
            "noise of seven kinds (OUT/noise/<kind>_<nn>.wav), with a README. The same seed gives "
            "byte-identical files. OUT must be new, empty, or an earlier synthetic corpus (overwritten)."),
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the corpus to")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (non-negative integer)")
    parser.add_argument("--speakers", type=positive_int, default=8, metavar="N", help="number of speakers")
    parser.add_argument("--utterances", type=positive_int, default=12, metavar="N",
                        help="utterances per speaker (1.5-3 s each)")
    parser.add_argument("--sr", type=positive_int, default=16000, metavar="HZ", help="sample rate")
    parser.add_argument("--noise-seconds", type=positive_float, default=8.0, metavar="S",
                        help="length of each noise file (2 files per kind)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.audio.io import audio_info, list_audio_files
    from dlsp.data.synthetic_corpus import make_synthetic_corpus

    start = time.perf_counter()
    out = make_synthetic_corpus(args.out, seed=args.seed, n_speakers=args.speakers,
                                utterances_per_speaker=args.utterances, noise_seconds=args.noise_seconds,
                                sample_rate=args.sr, progress=sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    speech = [audio_info(p).duration for p in list_audio_files(out / "speech")]
    noise = [audio_info(p).duration for p in list_audio_files(out / "noise")]
    print(f"Wrote {len(speech)} speech files ({args.speakers} speakers x {args.utterances} utterances, "
          f"{sum(speech) / 60:.1f} min) and {len(noise)} noise files ({sum(noise) / 60:.1f} min) at "
          f"{args.sr} Hz to {out} in {elapsed:.1f} s (seed {args.seed}); speech/ holds one folder per "
          f"speaker, noise/ one file per kind and number, and README.txt describes the voices and how to "
          f"remake them.")
    return 0


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value

"""Where a denoiser's generalisation gap lies: SI-SDR gain on training vs held-out speakers and noise recordings.

Mixes segments the way training does (the default's last stage, recipes/denoise_default_wideband.yaml: 2 s,
-5..20 dB SNR, no augmentation) from four pairings of the default recipe's splits of ../shared/data: training or
validation speakers with training or validation noise recordings (the training noise pool includes the recipe's
synthetic noises).
The held-out/held-out column is the validation score the denoise recipes select models by, on `--segments`
segments. A large drop from training to held-out noise with the same speakers says the model learnt its noise
recordings rather than noise; the same for speakers. Prints one markdown table of mean SI-SDR gain in dB.

    .venv/bin/python benchmarks/denoise_generalization.py                       # the shipped default
    .venv/bin/python benchmarks/denoise_generalization.py --model ft=runs/denoise_default_augment/best.pt
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
PAIRINGS = (("train", "train"), ("train", "val"), ("val", "train"), ("val", "val"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="models besides the default")
    parser.add_argument("--segments", type=int, default=1024, help="segments per pairing")
    parser.add_argument("--cache", default=str(ROOT / "runs" / "cache"), help="decoded audio cache")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script
    from denoise import DEFAULT_RECIPE, default_folders  # benchmarks/denoise.py, beside this script
    from dlsp.config import load_config
    from dlsp.denoise.data import MixingSource, batches
    from dlsp.denoise.model_file import load_denoiser
    from dlsp.denoise.train import DenoiseConfig, load_data, validation_si_sdr

    data_dir = data_folder(args.data)
    config = load_config(DenoiseConfig, DEFAULT_RECIPE)
    speech, noise = default_folders(data_dir)  # the folders benchmarks/denoise.py splits
    sources = load_data(config, clean=[str(p) for p in speech], noise=[str(p) for p in noise], cache=args.cache,
                        progress=False).sources
    val = sources["val"]
    segment_batches = {}
    for speakers, noises in PAIRINGS:
        # Validation's mixing settings and seed; only the pools change.
        source = MixingSource(sources[speakers].clean, sources[noises].noise, val.snr, val.level,
                              val.segment_samples, val.sample_rate)
        segment_batches[speakers, noises] = list(batches(source, config.train.seed + 1, 0, args.segments, 64))
    models = [("dlsp default (shipped)", None)] + [tuple(item.split("=", 1)) for item in args.model]
    rows = []
    for name, path in models:
        model = load_denoiser(path).model
        print(f"evaluating {name} ...", file=sys.stderr)
        gains = [validation_si_sdr(model, segment_batches[pairing], config.stft_config,
                                   torch.device("cpu"))["val_si_sdr_improvement"] for pairing in PAIRINGS]
        rows.append((name, gains))
    print(f"SI-SDR gain in dB, {args.segments} segments per pairing (speakers / noise recordings)\n")
    print("| model | train / train | train / held-out | held-out / train | held-out / held-out |")
    print("|---|---:|---:|---:|---:|")
    for name, gains in rows:
        print(f"| {name} | " + " | ".join(f"{g:.3f}" for g in gains) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

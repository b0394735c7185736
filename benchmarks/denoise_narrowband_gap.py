"""Where 8 kHz input loses against the same recording at 16 kHz (issue 21's unmet narrowband target).

Material: the cross-corpus hold-out mixtures of benchmarks/denoise.py (`make_crosscorpus_set`: one mixture per
held-out noise kind and SNR, -5 to +10 dB, 4 s; speakers and noise kinds no shipped model trains on). Each
mixture is denoised by the dlsp default twice: at 16 kHz as it is, and after soxr resampling to 8 kHz (the
output brought back to 16 kHz). Both are scored in the band both carry (0-3.5 kHz: clean, input and output cut
there, as benchmarks/denoise_rates.py's common-band column), as SI-SDR gain over the input. The table gives per
mixture the two gains, their difference (8 kHz minus 16 kHz) and the share of the noise's energy above 4 kHz;
the summary groups the differences by that share, to tell whether the loss comes where the upper band carries
noise (which the 16 kHz model then sees alone) or also where it carries only speech.

A third run separates the information an 8 kHz recording lacks from what the rate path itself costs: the 8 kHz
audio brought back to 16 kHz (the same band-limited content, its upper band empty) and denoised at 16 kHz. Its
gain against the 8 kHz run's is the cost of taking 8 kHz input (resampling in and out, the empty band's
handling); against the wideband run's, the cost of the missing band.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/denoise_narrowband_gap.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

NARROW_RATE = 8000
SHARE_GROUPS = ((0.0, 1.0), (1.0, 5.0), (5.0, 100.0))  # % of the noise's energy above 4 kHz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "bench_out" / "narrow_gap"),
                        help="folder for the mixtures")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import soundfile as sf
    import soxr
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script
    from denoise import SAMPLE_RATE, make_crosscorpus_set  # benchmarks/denoise.py
    from denoise_rates import COMMON_BAND_HZ, band_pass  # benchmarks/denoise_rates.py
    from dlsp.denoise.enhance import Denoiser
    from dlsp.metrics.enhancement import si_sdr

    started = time.perf_counter()
    pairs, meta = make_crosscorpus_set(data_folder(args.data), Path(args.out), 1, args.seconds, args.seed)
    denoiser = Denoiser.from_file(None, device="cpu")

    def common(x: np.ndarray) -> np.ndarray:
        return band_pass(x, SAMPLE_RATE, 0.0, COMMON_BAND_HZ)

    rows = []
    for name, clean_path, noisy_path, _ in pairs:
        print(f"  {name} ...", file=sys.stderr)
        clean, noisy = (sf.read(path, dtype="float32")[0] for path in (clean_path, noisy_path))
        narrow = soxr.resample(noisy, SAMPLE_RATE, NARROW_RATE)
        narrow_in = soxr.resample(narrow, NARROW_RATE, SAMPLE_RATE)[: noisy.size]
        narrow_out = soxr.resample(denoiser.enhance(narrow, NARROW_RATE), NARROW_RATE, SAMPLE_RATE)[: noisy.size]
        wide_out = denoiser.enhance(noisy, SAMPLE_RATE)
        limited_out = denoiser.enhance(narrow_in, SAMPLE_RATE)
        reference = common(clean)
        wide = si_sdr(common(wide_out), reference) - si_sdr(common(noisy), reference)
        narrow_gain = si_sdr(common(narrow_out), reference) - si_sdr(common(narrow_in), reference)
        limited = si_sdr(common(limited_out), reference) - si_sdr(common(narrow_in), reference)
        noise = noisy - clean
        share = 100 * float(np.sum(band_pass(noise, SAMPLE_RATE, 4000.0, 8000.0) ** 2) / max(np.sum(noise**2), 1e-20))
        rows.append((name, meta[name]["kind"], meta[name]["snr_db"], wide, narrow_gain, share, limited))

    print(f"{len(rows)} cross-corpus mixtures (held-out noise kinds and speakers), dlsp default, one thread. SI-SDR "
          f"gain dB in 0-{COMMON_BAND_HZ / 1000:g} kHz at 16 kHz and at 8 kHz.\n")
    print("| mixture | noise kind | SNR dB | gain 16 kHz | gain 8 kHz | 8 - 16 kHz | band-limited at 16 kHz | "
          "noise above 4 kHz % |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for name, kind, snr, wide, narrow_gain, share, limited in rows:
        print(f"| {name} | {kind} | {snr:+g} | {wide:.2f} | {narrow_gain:.2f} | {narrow_gain - wide:+.2f} | "
              f"{limited:.2f} | {share:.1f} |")
    differences = np.array([r[4] - r[3] for r in rows])
    shares = np.array([r[5] for r in rows])
    print("\n| noise energy above 4 kHz | mixtures | mean 8 - 16 kHz dB | median dB |")
    print("|---|--:|--:|--:|")
    for low, high in SHARE_GROUPS:
        chosen = differences[(shares >= low) & (shares < high)]
        if chosen.size:
            print(f"| {low:g}-{high:g} % | {chosen.size} | {chosen.mean():+.2f} | {np.median(chosen):+.2f} |")
    print(f"| all | {differences.size} | {differences.mean():+.2f} | {np.median(differences):+.2f} |")
    path_cost = np.array([r[4] - r[6] for r in rows])
    band = np.mean([r[3] - r[6] for r in rows])
    print(f"\nThe rate path: 8 kHz input against the same band-limited audio at 16 kHz, mean "
          f"{path_cost.mean():+.3f} dB (median {np.median(path_cost):+.3f}, range {path_cost.min():+.3f} to "
          f"{path_cost.max():+.3f}); the same audio at 16 kHz with its upper band against band-limited: mean "
          f"{band:+.2f} dB.")
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""STFT + ISTFT round trip: dlsp (torch) against librosa and plain torch, on 10 minutes of 16 kHz audio.

Run: `.venv/bin/python benchmarks/stft.py` (about 20 s on 2 cores). All methods use n_fft 1024, hop 512 and a
periodic Hann window on the same float32 signal, in the same process; each repeat runs every method once, in
rotating order, so that background load hits them alike. Prints a markdown table of median seconds over the
repeats (minimum in brackets), the speed ratio against librosa and the round trip's max absolute error.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import librosa
import numpy as np
import torch

from dlsp.audio.stft import istft, stft

N_FFT = 1024
HOP = 512


def make_signal(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Speech-like test audio: a few drifting tones in soft noise, float32, peak below 1."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wobble = [3 * np.sin(0.3 * k * t) for k in range(3)]
    tones = sum(0.2 * np.sin(2 * np.pi * f * t + w) for f, w in zip((220, 660, 1800), wobble, strict=True))
    return (tones + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def methods(n_samples: int) -> dict[str, tuple[Callable, Callable]]:
    """name -> (analysis, synthesis), each synthesis returning `n_samples` samples."""
    window = torch.hann_window(N_FFT)
    threads = torch.get_num_threads()
    return {
        "librosa stft + istft": (
            lambda x: librosa.stft(x, n_fft=N_FFT, hop_length=HOP, window="hann"),
            lambda s: librosa.istft(s, n_fft=N_FFT, hop_length=HOP, window="hann", length=n_samples),
        ),
        "torch.stft + torch.istft": (
            lambda x: torch.stft(torch.from_numpy(x), N_FFT, HOP, window=window, return_complex=True),
            lambda s: torch.istft(s, N_FFT, HOP, window=window, length=n_samples),
        ),
        f"dlsp stft + istft ({threads} threads)": (
            lambda x: stft(x, N_FFT, HOP),
            lambda s: istft(s, N_FFT, HOP, length=n_samples),
        ),
        # librosa computes on one core; this row compares per core and shows a data-loader worker's speed.
        "dlsp stft + istft (1 thread)": (
            lambda x: _one_thread(stft, x, N_FFT, HOP),
            lambda s: _one_thread(istft, s, N_FFT, HOP, length=n_samples),
        ),
    }


def _one_thread(function: Callable, *args, **kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return function(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


def measure(signal: np.ndarray, repeats: int) -> dict[str, dict[str, list[float] | float]]:
    """Time analysis, synthesis and the whole round trip of every method, interleaved across repeats."""
    table = methods(signal.size)
    results: dict[str, dict] = {name: {"stft": [], "istft": [], "round trip": []} for name in table}
    names = list(table)
    for repeat in range(repeats + 1):  # repeat 0 warms up (imports, caches, allocator) and is discarded
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            analysis, synthesis = table[name]
            start = time.perf_counter()
            spec = analysis(signal)
            middle = time.perf_counter()
            restored = synthesis(spec)
            end = time.perf_counter()
            if repeat:
                results[name]["stft"].append(middle - start)
                results[name]["istft"].append(end - middle)
                results[name]["round trip"].append(end - start)
            results[name]["error"] = float(np.abs(np.asarray(restored) - signal).max())
    return results


def markdown(results: dict, minutes: float, sample_rate: int, repeats: int) -> str:
    baseline = statistics.median(results["librosa stft + istft"]["round trip"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"STFT + ISTFT of {minutes:g} min of {sample_rate} Hz float32 audio, n_fft {N_FFT}, hop {HOP}, Hann; "
        f"median of {repeats} repeats (min in brackets); torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, librosa {librosa.__version__}, {os.cpu_count()} CPUs, "
        f"load average {load:.2f} at the end",
        "",
        "| method | round trip s | stft s | istft s | speed vs librosa | round-trip max error |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        cells = [f"{statistics.median(result[key]):.3f} ({min(result[key]):.3f})"
                 for key in ("round trip", "stft", "istft")]
        ratio = baseline / statistics.median(result["round trip"])
        lines.append(f"| {name} | {' | '.join(cells)} | {ratio:.2f}x | {result['error']:.1e} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    signal = make_signal(args.minutes * 60, args.sample_rate)
    results = measure(signal, args.repeats)
    print(markdown(results, args.minutes, args.sample_rate, args.repeats))


if __name__ == "__main__":
    main()

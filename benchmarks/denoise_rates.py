"""Denoising at any sample rate, level and SNR (issue 21): dlsp models vs RNNoise, DeepFilterNet3 and noisereduce.

Material: the cross-corpus hold-out set of benchmarks/denoise.py (`make_crosscorpus_set`, one mixture per noise
kind and SNR, written with its manifest to OUT/crosscorpus): speakers and noise kinds no shipped model hears in
training. Of each of the 14 held-out noise kinds `--per-kind` mixtures (default 2, so 28; speechocean762 and
Arabic Speech Commands speakers alternate) give a clean part and a noise part (noisy minus clean); the clean part
is set to an active speech level of -26 dBFS (ITU-T P.56, `dlsp.metrics.level`) and the noise is scaled to each
SNR below (SNR = energy ratio over the clip, as `dlsp.audio.mixing`). Levels are in dB re full-scale RMS (a
full-scale sine is -3 dBFS). Band changes, levels and the clean-input SI-SDR are medians over the files; SI-SDR
gains, PESQ and STOI are means. Every method runs on the same audio in the same run, one thread.

The data is 16 kHz (nothing above 8 kHz), so renderings at 44.1 and 48 kHz have nothing above 8 kHz except what
this script adds. Rendering at rate R: the 16 kHz signal resampled with soxr (HQ); above 16 kHz plus a band from
8 to 20 kHz of white noise shaped in time by the signal's own 4-8 kHz envelope (RMS over 10 ms): for clean speech
an "air" band whose energy is 30 dB below the speech's (it follows the sibilants), for noise a band with the
noise's mean power density in 4-8 kHz (a flat continuation of its spectrum; it follows the noise's envelope).
Renderings at 8 kHz are band-limited to 4 kHz.

Tables (markdown on stdout, progress on stderr):

1. Rates, clean speech and noise alone: the same clean utterances and noises rendered at 8, 16, 44.1 and 48 kHz;
   per rate and method the level change (output vs input) of clean speech in 0-4, 4-8, 8-12 and 12-20 kHz (the
   bands the rate has; `dlsp.denoise.transparency.band_level_changes`) and the noise reduction (input minus
   output level) of noise alone in the same bands.
2. Rates, noisy speech (0 dB SNR): SI-SDR, SI-SDR gain, PESQ (wb) and STOI of each output resampled to 16 kHz
   against the 16 kHz clean speech (the model's band); also the SI-SDR gain against the clean speech rendered at
   the rate and brought back to 16 kHz ("band-matched": at 8 kHz the 0-4 kHz clean speech, so the 4-8 kHz band the
   rate cannot carry does not count against input or output; at the other rates nearly the 16 kHz clean).
3. Levels (16 kHz): clean speech and noisy speech at 10 and 0 dB SNR with the clean speech at -50, -35, -20 and
   -3 dBFS active speech level; where the input would exceed 0.98 of full scale a look-ahead peak limiter (5 ms
   windows, gain applied alike to speech and noise, so the clean reference is the limited speech) keeps it from
   clipping: the measured input level is printed. Per method and level: active speech level of the output minus
   that of the clean input (P.56), SI-SDR of the output vs the clean input (clean in), SI-SDR gain (noisy in),
   output samples with |x| >= 1 over all files of the level, and the output peak.
4. SNR sweep (16 kHz, -26 dBFS): input SNR -5, 0, 5, 10, 20, 30 dB: mean SI-SDR gain, and output SI-SDR, per
   method; clean input: median SI-SDR of output vs input (do-no-harm: gains at 20 and 30 dB and clean-input
   SI-SDR should not be low).
5. Stream start (16 kHz, one fresh stream per signal, zero state; 2 s signals, one file per noise kind): noise
   alone at -30 dBFS: output level and attenuation in 0-200 ms vs 200-1000 ms (does a burst of noise pass while
   the recurrent state warms up?); noisy speech (0 dB) starting at t=0: SI-SDR gain in each window; clean speech
   starting at t=0: level change in each window.
6. Stereo (48 kHz): a centred source (the same speech in both channels) with independent noise per channel at
   5 dB (the right channel's noise is the left one's reversed in time): level balance left minus right of input
   and output, the balance of the speech part of the output (projection on the clean speech), the largest
   difference between the output's channels for identical input channels, and the largest difference between a
   channel of the stereo output and the same channel run alone (mono): zero means left and right get the same
   processing. Peers are mono methods and run channel by channel.
7. Music alone (48 kHz): a synthetic music-like signal (harmonic tones with vibrato, chords, kick/snare/hi-hat
   noise-burst pattern at 120 bpm, -20 dBFS): level change per band and overall, and SI-SDR vs the input. Just
   measured; no target.

Targets of issue 21 reported PASS/FAIL per dlsp model at the end: clean speech at 44.1 and 48 kHz every band
(incl. 8-12 and 12-20 kHz) within +-1.5 dB; noise alone at 44.1 and 48 kHz reduced in 8-12 and 12-20 kHz (by at
least 3 dB, a threshold chosen here); 8 kHz input: SI-SDR gain (band-matched) at least that of the same audio at
16 kHz; active speech level of clean input within +-1 dB at every input level (the noisy-input conditions are
reported the same way as extra lines); SI-SDR of output vs clean input (16 kHz) at least RNNoise's; extra: no
clipped output samples.

Methods: dlsp default (`Denoiser.from_file(None, device="cpu", onnx_threads=1)`: what `dlsp denoise run` runs,
onnxruntime engine), the same shown its input as it is (`dlsp default, level floor none`: no input level follower,
`dlsp.denoise.input_level`), each `--model NAME=PATH`, and the peers of benchmarks/denoise.py (noisereduce at any rate;
RNNoise and DeepFilterNet3, 48 kHz models, resample any rate to 48 kHz and back, delay removed).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/denoise_rates.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/denoise_rates.py --model plain=runs/wb_plain/best.pt
    .venv/bin/python benchmarks/denoise_rates.py --quick --no-peers     # smoke run, about a minute
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# One thread for every method, BLAS included: OpenBLAS reads this when numpy loads, so it is set before the import.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 16000  # the data's rate and the rate scores are computed at
RATES = (8000, 16000, 44100, 48000)
# The band every rate carries in full (the 8 kHz renderings' resampler starts rolling off near 3.6 kHz).
COMMON_BAND_HZ = 3500.0
BANDS = ((0, 4000), (4000, 8000), (8000, 12000), (12000, 20000))
HIGH_BANDS = ((8000, 12000), (12000, 20000))
SPEECH_DBFS = -26.0
RATE_SNR = 0.0
LEVELS = (-50.0, -35.0, -20.0, -3.0)
LEVEL_SNRS = (10.0, 0.0)
SWEEP_SNRS = (-5.0, 0.0, 5.0, 10.0, 20.0, 30.0)
AIR_DB = -30.0  # energy of the speech's added 8-20 kHz band re the speech's
AIR_LOW, AIR_TOP = 8000.0, 20000.0
ENVELOPE_SECONDS = 0.01
LIMIT_CEILING = 0.98
LIMIT_SECONDS = 0.005
STREAM_SECONDS = 2.0
STREAM_WINDOWS = ((0.0, 0.2), (0.2, 1.0))
STREAM_NOISE_DBFS = -30.0
STEREO_RATE = 48000
STEREO_SNR = 5.0
STEREO_ITEMS = 6
MUSIC_RATE = 48000
MUSIC_SECONDS = 6.0
MUSIC_DBFS = -20.0
LEVEL_ITEMS = 8
# Targets.
BAND_TOLERANCE_DB = 1.5
HIGH_NOISE_REDUCTION_DB = 3.0
LEVEL_TOLERANCE_DB = 1.0
NOISY = "noisy input"


@dataclass
class Item:
    """One held-out mixture's parts at 16 kHz: clean speech at -26 dBFS (P.56) and its noise at 0 dB SNR."""

    name: str
    kind: str
    corpus: str
    clean: np.ndarray
    noise: np.ndarray

    def noise_at(self, snr_db: float) -> np.ndarray:
        return (self.noise * 10 ** (-snr_db / 20)).astype(np.float32)


@dataclass
class Method:
    name: str
    enhance: Callable[[np.ndarray, int], np.ndarray]
    dlsp: bool = False
    stereo: bool = False  # takes (channels, time) itself; otherwise run channel by channel

    def run(self, audio: np.ndarray, rate: int) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2 and not self.stereo:
            return np.stack([self.run(channel, rate) for channel in audio])
        out = np.asarray(self.enhance(audio, rate), dtype=np.float64)
        if out.shape != audio.shape:
            raise RuntimeError(f"{self.name} returned shape {out.shape} for input {audio.shape}")
        return out


@dataclass
class Collect:
    """Per-file values by key."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(float(value))

    def median(self, key: str) -> float:
        values = self.values.get(key)
        return float(np.median(values)) if values else math.nan

    def mean(self, key: str) -> float:
        values = [v for v in self.values.get(key, []) if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    def total(self, key: str) -> float:
        return float(np.sum(self.values.get(key, [0.0])))

    def max(self, key: str) -> float:
        values = self.values.get(key)
        return float(np.max(values)) if values else math.nan


def paired_difference(first: list[float], second: list[float]) -> tuple[float, float]:
    """Mean of `first[i] - second[i]` and the half-width of its 95% interval (normal approximation), so a target
    comparing two means of the same files says whether the difference is more than the files' spread."""
    difference = np.asarray(first) - np.asarray(second)
    return float(difference.mean()), float(1.96 * difference.std(ddof=1) / np.sqrt(difference.size))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="extra dlsp models")
    parser.add_argument("--no-peers", action="store_true", help="skip noisereduce, RNNoise and DeepFilterNet3")
    parser.add_argument("--out", default=str(ROOT / "bench_out" / "denoise_rates"),
                        help="folder for the mixtures, their manifest and report.md")
    parser.add_argument("--per-kind", type=int, default=2, help="mixtures per held-out noise kind (1-4)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each mixture")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 4 noise kinds, 1 mixture each, 3 s, fewer files per table")
    args = parser.parse_args()
    if not 1 <= args.per_kind <= 4:
        parser.error("--per-kind must be 1 to 4")
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script

    data = data_folder(args.data)
    out = Path(args.out)
    started = time.perf_counter()
    methods = build_methods(args.model, args.no_peers)
    if len({m.name for m in methods}) != len(methods):
        print("two methods share a name; rename one with --model NAME=PATH", file=sys.stderr)
        return 2
    per_kind, seconds, kinds = (1, 3.0, 4) if args.quick else (args.per_kind, args.seconds, None)
    items = load_items(data, out / "crosscorpus", per_kind, seconds, args.seed, kinds)
    print(f"{len(items)} files of {seconds:g} s, methods: {', '.join(m.name for m in methods)}", file=sys.stderr)
    level_items = spread(items, 2 if args.quick else LEVEL_ITEMS)
    stream_items = first_per_kind(items)
    stereo_items = spread(items, 2 if args.quick else STEREO_ITEMS)

    parts = [header(items, methods, seconds)]
    rates = run_rates(methods, items, args.seed)
    parts += rates_tables(rates, methods, len(items))
    levels = run_levels(methods, level_items)
    parts.append(levels_table(levels, methods, len(level_items)))
    sweep = run_sweep(methods, items, rates)
    parts += sweep_tables(sweep, methods, len(items))
    start = run_stream_start(methods, stream_items)
    parts.append(stream_table(start, methods, len(stream_items)))
    stereo = run_stereo(methods, stereo_items, args.seed)
    parts.append(stereo_table(stereo, methods, len(stereo_items)))
    music = run_music(methods, args.seed)
    parts.append(music_table(music, methods))
    parts.append(verdicts(methods, rates, levels, sweep))
    parts.append(f"Total time {time.perf_counter() - started:.0f} s.")
    report = "\n\n".join(parts)
    print(report, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report + "\n", encoding="utf-8")
    return 0


# ---------------------------------------------------------------------------------------------------- material


AS_IS = "dlsp default, level floor none"


def build_methods(extra: list[str], no_peers: bool) -> list[Method]:
    """The noisy input (identity), the peers unless `no_peers`, the dlsp default and each `NAME=PATH`."""
    from denoise import DFN3, DeepFilterNet3, DlspModel, NoiseReduce, RNNoise  # benchmarks/denoise.py

    methods = [Method(NOISY, lambda audio, rate: audio, stereo=True)]
    if not no_peers:
        methods += [Method("noisereduce", NoiseReduce().enhance), Method("RNNoise", RNNoise().enhance)]
        try:
            methods.append(Method(DFN3, DeepFilterNet3().enhance))
        except (ImportError, OSError, RuntimeError) as exc:
            print(f"DeepFilterNet3 is not available ({exc}): its rows are left out", file=sys.stderr)
    models: list[tuple[str, Path | None]] = [("dlsp default", None)]
    for item in extra:
        name, _, path = item.partition("=")
        if not name or not path:
            raise SystemExit(f"--model needs NAME=PATH, got {item!r}")
        models.append((name, Path(path)))
    for name, path in models:
        model = DlspModel(path, None)  # Denoiser.from_file(path, device="cpu", engine=None, onnx_threads=1)
        methods.append(Method(name, model.enhance, dlsp=True, stereo=True))
    # Ablation: the default model shown its input as it is (no input level follower, `--level-floor none`).
    methods.append(Method(AS_IS, DlspModel(None, None, level_floor_db=None).enhance, dlsp=True, stereo=True))
    return methods


def load_items(data: Path, out: Path, per_kind: int, seconds: float, seed: int, kinds: int | None) -> list[Item]:
    """`per_kind` (clean, noise) pairs of each held-out noise kind from `make_crosscorpus_set` (one mixture per
    kind and SNR; the first `per_kind` SNR rows of a kind alternate the speech corpora), speech at -26 dBFS."""
    from denoise import make_crosscorpus_set  # benchmarks/denoise.py
    from dlsp.audio.io import load_audio
    from dlsp.metrics.level import active_speech_level

    pairs, meta = make_crosscorpus_set(data, out, 1, seconds, seed)
    by_kind: dict[str, list[tuple]] = {}
    for pair in pairs:
        by_kind.setdefault(meta[pair[0]]["kind"], []).append(pair)
    items = []
    for kind, kind_pairs in list(by_kind.items())[:kinds]:
        for name, clean_path, noisy_path, _ in kind_pairs[:per_kind]:
            clean = load_audio(clean_path, allow_silent=True)[0].astype(np.float64)
            noise = load_audio(noisy_path, allow_silent=True)[0].astype(np.float64) - clean
            gain = 10 ** ((SPEECH_DBFS - active_speech_level(clean, SR)) / 20)
            clean = clean * gain
            noise = noise * math.sqrt(np.sum(clean**2) / np.sum(noise**2))  # 0 dB SNR
            items.append(Item(name, kind, meta[name]["speech_corpus"], clean.astype(np.float32),
                              noise.astype(np.float32)))
    return items


def spread(items: list[Item], count: int) -> list[Item]:
    """`count` items spread evenly over the list (so over noise kinds)."""
    if count >= len(items):
        return list(items)
    return [items[int(i * len(items) / count)] for i in range(count)]


def first_per_kind(items: list[Item]) -> list[Item]:
    seen: dict[str, Item] = {}
    for item in items:
        seen.setdefault(item.kind, item)
    return list(seen.values())


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    if rate_in == rate_out:
        return np.asarray(audio, dtype=np.float64)
    return soxr.resample(np.asarray(audio, dtype=np.float32), rate_in, rate_out, quality="HQ").astype(np.float64)


def fit(audio: np.ndarray, length: int) -> np.ndarray:
    return audio[:length] if audio.size >= length else np.pad(audio, (0, length - audio.size))


def band_pass(audio: np.ndarray, rate: int, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(np.asarray(audio, dtype=np.float64))
    freqs = np.fft.rfftfreq(audio.size, 1.0 / rate)
    spectrum[(freqs < low) | (freqs >= high)] = 0
    return np.fft.irfft(spectrum, n=audio.size)


def upper_band(audio16: np.ndarray, rate: int, length: int, power: float, rng: np.random.Generator) -> np.ndarray:
    """`length` samples at `rate` of white noise in 8-20 kHz, shaped in time by the 4-8 kHz envelope of `audio16`
    (RMS over 10 ms), with mean power `power`."""
    band = band_pass(audio16, SR, 4000, 8000)
    width = max(1, int(ENVELOPE_SECONDS * SR))
    envelope = np.sqrt(np.convolve(band**2, np.ones(width) / width, mode="same"))
    envelope = np.interp(np.arange(length) / rate, np.arange(audio16.size) / SR, envelope)
    shaped = band_pass(rng.standard_normal(length) * envelope, rate, AIR_LOW, AIR_TOP)
    current = float(np.mean(shaped**2))
    return shaped * math.sqrt(power / current) if current > 0 else shaped


def render(item: Item, rate: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The item's clean speech and its noise (0 dB SNR) at `rate`: resampled, plus above 16 kHz the added 8-20 kHz
    bands (speech: air 30 dB below the speech; noise: the noise's 4-8 kHz power density)."""
    clean, noise = resample(item.clean, SR, rate), resample(item.noise, SR, rate)
    if rate > SR:
        rng = np.random.default_rng([seed, index, rate])
        speech_power = float(np.mean(item.clean.astype(np.float64) ** 2))
        clean = clean + upper_band(item.clean, rate, clean.size, speech_power * 10 ** (AIR_DB / 10), rng)
        density = float(np.mean(band_pass(item.noise, SR, 4000, 8000) ** 2)) / 4000
        noise = noise + upper_band(item.noise, rate, noise.size, density * (AIR_TOP - AIR_LOW), rng)
    return clean, noise


def rate_bands(rate: int) -> list[tuple[int, int]]:
    return [band for band in BANDS if band[1] <= rate / 2]


def band_shares(audio: np.ndarray, rate: int) -> list[float]:
    """Energy of each of the rate's bands in dB re the whole signal's."""
    power = np.abs(np.fft.rfft(np.asarray(audio, dtype=np.float64))) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1.0 / rate)
    total = float(power.sum())
    return [10 * math.log10(max(float(power[(freqs >= low) & (freqs < high)].sum()), 1e-300) / total)
            for low, high in rate_bands(rate)]


def band_changes(reference: np.ndarray, output: np.ndarray, rate: int) -> list[float]:
    from dlsp.denoise.transparency import band_level_changes

    return band_level_changes(reference, output, rate, rate_bands(rate))


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    from dlsp.metrics.enhancement import si_sdr

    return float(si_sdr(reference, estimate))


def quiet(function: Callable, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def level_db(audio: np.ndarray) -> float:
    power = float(np.mean(np.asarray(audio, dtype=np.float64) ** 2))
    return 10 * math.log10(power) if power > 0 else -math.inf


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------ rates


def run_rates(methods: list[Method], items: list[Item], seed: int) -> dict[str, dict[int, Collect]]:
    """`{method: {rate: Collect}}` with keys `clean_band{i}`, `noise_band{i}` (reduction), `clean_sdr`, and for
    the noisy input `sdr`, `gain`, `gain_band`, `pesq`, `stoi`."""
    from dlsp.metrics.enhancement import pesq_score, stoi_score

    results: dict[str, dict[int, Collect]] = {m.name: {} for m in methods}
    noise_gain = 10 ** (-RATE_SNR / 20)
    for rate in RATES:
        rendered = [render(item, rate, seed, i) for i, item in enumerate(items)]
        references = [fit(resample(resample(item.clean, SR, rate), rate, SR), item.clean.size) for item in items]
        for method in methods:
            begin = time.perf_counter()
            collect = results[method.name].setdefault(rate, Collect())
            for item, (clean, noise), band_ref in zip(items, rendered, references, strict=True):
                if method.name == NOISY:
                    for key, signal in (("in_clean_band", clean), ("in_noise_band", noise)):
                        for i, share in enumerate(band_shares(signal, rate)):
                            collect.add(f"{key}{i}", share)
                else:
                    out = method.run(clean, rate)
                    for i, change in enumerate(band_changes(clean, out, rate)):
                        collect.add(f"clean_band{i}", change)
                    collect.add("clean_sdr", sdr(clean, out))
                    out = method.run(noise, rate)
                    for i, change in enumerate(band_changes(noise, out, rate)):
                        collect.add(f"noise_band{i}", -change)
                noisy = clean + noise_gain * noise
                out16 = fit(resample(method.run(noisy, rate), rate, SR), item.clean.size)
                in16 = fit(resample(noisy, rate, SR), item.clean.size)
                after = sdr(item.clean, out16)
                collect.add("sdr", after)
                collect.add("gain", after - sdr(item.clean, in16))
                collect.add("gain_band", sdr(band_ref, out16) - sdr(band_ref, in16))
                low = [band_pass(x, SR, 0, COMMON_BAND_HZ) for x in (item.clean, in16, out16)]
                collect.add("gain_low", sdr(low[0], low[2]) - sdr(low[0], low[1]))
                collect.add("pesq", quiet(pesq_score, item.clean, out16, SR, on_error="nan"))
                collect.add("stoi", quiet(stoi_score, item.clean, out16, SR, on_error="nan"))
            progress(f"rates {rate} Hz: {method.name} {time.perf_counter() - begin:.1f} s")
    return results


def rates_tables(results: dict[str, dict[int, Collect]], methods: list[Method], count: int) -> list[str]:
    from dlsp.report.tables import format_table

    band_names = [f"{low / 1000:g}-{high / 1000:g}" for low, high in BANDS]
    rows = []
    for rate in RATES:
        n = len(rate_bands(rate))
        for method in methods:
            if method.name == NOISY:
                continue
            c = results[method.name][rate]
            rows.append([f"{rate / 1000:g}", method.name,
                         *[c.median(f"clean_band{i}") if i < n else "" for i in range(len(BANDS))],
                         *[c.median(f"noise_band{i}") if i < n else "" for i in range(len(BANDS))]])
    shares = results[NOISY].get(48000)
    inputs = "" if shares is None else (
        " Input at 48 kHz, median energy per band in dB re the whole signal: clean "
        + ", ".join(f"{b} kHz {shares.median(f'in_clean_band{i}'):.1f}" for i, b in enumerate(band_names))
        + "; noise " + ", ".join(f"{b} kHz {shares.median(f'in_noise_band{i}'):.1f}" for i, b in enumerate(band_names))
        + ".")
    headers = ["kHz", "method", *(f"clean {b} kHz dB" for b in band_names), *(f"noise red. {b} kHz dB"
                                                                              for b in band_names)]
    bands = (f"### Rates: clean speech and noise alone per band\n\n{count} clean utterances (-26 dBFS) and their "
             f"{count} noises alone, rendered at each rate (above 16 kHz with the added 8-20 kHz bands). Clean: "
             "median level change output vs input per band (0 = untouched; target at 44.1/48 kHz: every band within "
             f"+-{BAND_TOLERANCE_DB:g} dB). Noise: median reduction, input minus output level, per band (target at "
             f"44.1/48 kHz: 8-12 and 12-20 kHz reduced by >= {HIGH_NOISE_REDUCTION_DB:g} dB).{inputs}\n\n"
             + format_table(headers, rows, markdown=True, precision=2))
    rows = []
    for rate in RATES:
        for method in methods:
            c = results[method.name][rate]
            rows.append([f"{rate / 1000:g}", method.name, c.mean("sdr"), c.mean("gain"), c.mean("gain_band"),
                         c.mean("gain_low"), c.mean("pesq"), c.mean("stoi")])
    scores = (f"### Rates: noisy speech ({RATE_SNR:+g} dB SNR)\n\n{count} mixtures rendered at each rate, outputs "
              "resampled to 16 kHz and scored against the 16 kHz clean speech (means); `gain band-matched`: SI-SDR "
              "gain against the clean speech rendered at the rate and back (at 8 kHz its 0-4 kHz band); `gain 0-3.5 "
              "kHz`: clean, input and output all cut to 0-3.5 kHz (below the 8 kHz resampler's roll-off), the band "
              "every rate carries, so the rates are compared on the same content. Target: the 8 kHz band-matched "
              "gain at least the 16 kHz one.\n\n"
              + format_table(["kHz", "method", "SI-SDR dB", "SI-SDR gain dB", "gain band-matched dB",
                              f"gain 0-{COMMON_BAND_HZ / 1000:g} kHz dB", "PESQ wb", "STOI"], rows, markdown=True,
                             precision=2))
    return [bands, scores]


# ----------------------------------------------------------------------------------------------------- levels


def limiter_gain(audio: np.ndarray, rate: int, ceiling: float = LIMIT_CEILING) -> np.ndarray:
    """Per-sample gain <= 1 that keeps `|gain * audio| <= ceiling`: the minimum of the needed gain over +-5 ms,
    then averaged over 2.5 ms either side (each average is of minima over windows containing the sample, so it
    never exceeds the gain that sample needs); all ones when the peak is already below the ceiling."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    peak = np.abs(audio)
    if peak.max() <= ceiling:
        return np.ones_like(audio)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-30))
    width = max(1, int(LIMIT_SECONDS * rate))
    gain = minimum_filter1d(need, 2 * width + 1, mode="nearest")
    return np.minimum(uniform_filter1d(gain, width + 1 if width % 2 == 0 else width, mode="nearest"), need)


def run_levels(methods: list[Method], items: list[Item]) -> dict[str, dict[float, Collect]]:
    """`{method: {level: Collect}}`: keys `in_asl`, `asl_clean`, `asl_snr{snr}`, `sdr_clean`, `gain_snr{snr}`,
    `clipped`, `peak`."""
    from dlsp.metrics.level import active_speech_level

    results: dict[str, dict[float, Collect]] = {m.name: {} for m in methods}
    for method in methods:
        begin = time.perf_counter()
        for level in LEVELS:
            collect = results[method.name].setdefault(level, Collect())
            for item in items:
                gain = 10 ** ((level - SPEECH_DBFS) / 20)
                conditions = [("clean", item.clean * gain, np.zeros_like(item.clean, dtype=np.float64))]
                conditions += [(f"snr{snr:g}", item.clean * gain, item.noise_at(snr) * gain) for snr in LEVEL_SNRS]
                for tag, clean, noise in conditions:
                    limit = limiter_gain(clean + noise, SR)
                    clean, noisy = clean * limit, (clean + noise) * limit
                    out = method.run(noisy, SR)
                    reference = active_speech_level(clean, SR)
                    if tag == "clean":
                        collect.add("in_asl", reference)
                        collect.add("sdr_clean", sdr(clean, out))
                    else:
                        collect.add(f"gain_{tag}", sdr(clean, out) - sdr(clean, noisy))
                    collect.add(f"asl_{tag}", active_speech_level(out, SR) - reference)
                    collect.add("clipped", int(np.count_nonzero(np.abs(out) >= 1.0)))
                    collect.add("peak", float(np.max(np.abs(out))))
        progress(f"levels: {method.name} {time.perf_counter() - begin:.1f} s")
    return results


def levels_table(results: dict[str, dict[float, Collect]], methods: list[Method], count: int) -> str:
    from dlsp.report.tables import format_table

    rows = []
    for method in methods:
        for level in LEVELS:
            c = results[method.name][level]
            peak = c.max("peak")
            rows.append([method.name, f"{level:+g}", c.median("in_asl"), c.median("asl_clean"),
                         *(c.median(f"asl_snr{snr:g}") for snr in LEVEL_SNRS), c.median("sdr_clean"),
                         *(c.mean(f"gain_snr{snr:g}") for snr in LEVEL_SNRS), int(c.total("clipped")),
                         20 * math.log10(peak) if peak > 0 else -math.inf])
    snrs = [f"{snr:g} dB" for snr in LEVEL_SNRS]
    headers = ["method", "level dBFS", "clean in ASL dBFS", "ASL change clean dB",
               *(f"ASL change {s} SNR dB" for s in snrs), "SI-SDR clean in dB",
               *(f"SI-SDR gain {s} SNR dB" for s in snrs), "clipped samples", "out peak dBFS"]
    return (f"### Levels (16 kHz)\n\n{count} files, clean speech at each active speech level (P.56) and noisy at "
            f"{' and '.join(snrs)} SNR, peak-limited to {LIMIT_CEILING:g} (`clean in ASL`: the measured level of the "
            "limited clean input, median). ASL change: P.56 level of the output minus that of the clean input "
            f"(medians; target for clean input: within +-{LEVEL_TOLERANCE_DB:g} dB at every level; for noisy input "
            "the `noisy input` row shows what the noise itself adds). SI-SDR clean in: output vs input, median; "
            "gains: means. Clipped: output samples with |x| >= 1 over all the level's files and conditions.\n\n"
            + format_table(headers, rows, markdown=True, precision=2))


# ------------------------------------------------------------------------------------------------------ sweep


def run_sweep(methods: list[Method], items: list[Item],
              rates: dict[str, dict[int, Collect]]) -> dict[str, Collect]:
    """`{method: Collect}` with keys `gain{snr}`, `sdr{snr}` and `sdr_clean`; the 0 dB and clean-input values
    are those of the 16 kHz rates run (the same files)."""
    results: dict[str, Collect] = {}
    for method in methods:
        begin = time.perf_counter()
        collect = results[method.name] = Collect()
        known = rates[method.name][SR]
        for snr in SWEEP_SNRS:
            if snr == RATE_SNR:
                collect.values[f"gain{snr:g}"] = list(known.values["gain"])
                collect.values[f"sdr{snr:g}"] = list(known.values["sdr"])
                continue
            for item in items:
                noisy = item.clean.astype(np.float64) + item.noise_at(snr)
                after = sdr(item.clean, method.run(noisy, SR))
                collect.add(f"sdr{snr:g}", after)
                collect.add(f"gain{snr:g}", after - sdr(item.clean, noisy))
        collect.values["sdr_clean"] = list(known.values.get("clean_sdr", [math.inf]))
        progress(f"sweep: {method.name} {time.perf_counter() - begin:.1f} s")
    return results


def sweep_tables(results: dict[str, Collect], methods: list[Method], count: int) -> list[str]:
    from dlsp.report.tables import format_table

    headers = ["method", *(f"{snr:+g} dB" for snr in SWEEP_SNRS)]
    gains = [[m.name, *(results[m.name].mean(f"gain{snr:g}") for snr in SWEEP_SNRS),
              results[m.name].median("sdr_clean")] for m in methods if m.name != NOISY]
    after = [[m.name, *(results[m.name].mean(f"sdr{snr:g}") for snr in SWEEP_SNRS)] for m in methods]
    return [f"### SNR sweep (16 kHz): SI-SDR gain\n\n{count} files at -26 dBFS; mean SI-SDR gain per input SNR, and "
            "for clean input the median SI-SDR of output vs input (target: at least RNNoise's; do-no-harm: the "
            "gains at +20/+30 dB should not be far below 0).\n\n"
            + format_table([*headers, "clean in: SI-SDR dB"], gains, markdown=True, precision=2),
            "### SNR sweep (16 kHz): output SI-SDR (dB, mean; `noisy input`: the input's)\n\n"
            + format_table(headers, after, markdown=True, precision=2)]


# ----------------------------------------------------------------------------------------------- stream start


def starting_speech(item: Item, length: int) -> np.ndarray:
    """The item's clean speech from its first active sample (P.56 envelope at the activity threshold) less 10 ms,
    `length` samples (zero-padded)."""
    from dlsp.metrics.level import p56_envelope, speech_level

    threshold = 10 ** (speech_level(item.clean, SR).threshold_db / 20)
    active = np.flatnonzero(p56_envelope(item.clean, SR) >= threshold)
    start = max(0, int(active[0]) - int(0.01 * SR)) if active.size else 0
    return fit(item.clean[start:].astype(np.float64), length)


def run_stream_start(methods: list[Method], items: list[Item]) -> dict[str, Collect]:
    """`{method: Collect}`: per window w, `noise_out{w}`, `noise_atten{w}`, `noisy_gain{w}`, `clean_change{w}`."""
    length = int(STREAM_SECONDS * SR)
    windows = [slice(int(a * SR), int(b * SR)) for a, b in STREAM_WINDOWS]
    signals = []
    for item in items:
        speech = starting_speech(item, length)
        noise = fit(item.noise.astype(np.float64), length)
        alone = noise * 10 ** (STREAM_NOISE_DBFS / 20) / math.sqrt(np.mean(noise**2))
        mixed = noise * math.sqrt(np.sum(speech**2) / np.sum(noise**2)) * 10 ** (-RATE_SNR / 20)
        signals.append((speech, alone, speech + mixed))
    results: dict[str, Collect] = {}
    for method in methods:
        collect = results[method.name] = Collect()
        for speech, alone, noisy in signals:
            out_noise, out_noisy, out_clean = (method.run(x, SR) for x in (alone, noisy, speech))
            for w, span in enumerate(windows):
                collect.add(f"noise_out{w}", level_db(out_noise[span]))
                collect.add(f"noise_atten{w}", level_db(alone[span]) - level_db(out_noise[span]))
                collect.add(f"noisy_gain{w}", sdr(speech[span], out_noisy[span]) - sdr(speech[span], noisy[span]))
                collect.add(f"clean_change{w}", level_db(out_clean[span]) - level_db(speech[span]))
    return results


def stream_table(results: dict[str, Collect], methods: list[Method], count: int) -> str:
    from dlsp.report.tables import format_table

    names = [f"{a * 1000:g}-{b * 1000:g} ms" for a, b in STREAM_WINDOWS]
    keys = [("noise_out", "noise out dBFS", "median"), ("noise_atten", "noise atten dB", "median"),
            ("noisy_gain", "noisy SI-SDR gain dB", "mean"), ("clean_change", "clean level change dB", "median")]
    headers = ["method", *(f"{label} {name}" for _, label, _ in keys for name in names)]
    rows = [[m.name, *(getattr(results[m.name], how)(f"{key}{w}") for key, _, how in keys
                       for w in range(len(names)))] for m in methods]
    return (f"### Stream start (16 kHz)\n\n{count} signals of {STREAM_SECONDS:g} s (one per noise kind), each a fresh "
            f"stream: noise alone at {STREAM_NOISE_DBFS:g} dBFS (output level and attenuation), noisy speech "
            f"({RATE_SNR:+g} dB) and clean speech starting at t=0, in the first 200 ms vs 200-1000 ms. A noise "
            "burst at the start shows as a higher output level / lower attenuation in 0-200 ms.\n\n"
            + format_table(headers, rows, markdown=True, precision=2))


# ----------------------------------------------------------------------------------------------------- stereo


def run_stereo(methods: list[Method], items: list[Item], seed: int) -> dict[str, Collect]:
    """`{method: Collect}`: `in_balance`, `out_balance`, `speech_balance`, `same_diff` (identical channels in:
    largest |L - R| out), `mono_diff` (largest |stereo L - mono L|)."""
    signals = []
    for index, item in enumerate(items):
        speech, noise = render(item, STEREO_RATE, seed, 1000 + index)
        noise = noise * 10 ** (-STEREO_SNR / 20)
        signals.append((speech, np.stack([speech + noise, speech + noise[::-1]])))
    results: dict[str, Collect] = {}
    for method in methods:
        begin = time.perf_counter()
        collect = results[method.name] = Collect()
        for speech, stereo in signals:
            out = method.run(stereo, STEREO_RATE)
            collect.add("in_balance", level_db(stereo[0]) - level_db(stereo[1]))
            collect.add("out_balance", level_db(out[0]) - level_db(out[1]))
            alpha = [float(np.dot(channel, speech) / np.dot(speech, speech)) for channel in out]
            collect.add("speech_balance", 20 * math.log10(abs(alpha[0]) / abs(alpha[1]))
                        if alpha[0] and alpha[1] else math.nan)
            same = method.run(np.stack([stereo[0], stereo[0]]), STEREO_RATE)
            collect.add("same_diff", float(np.max(np.abs(same[0] - same[1]))))
            collect.add("mono_diff", float(np.max(np.abs(out[0] - method.run(stereo[0], STEREO_RATE)))))
        progress(f"stereo: {method.name} {time.perf_counter() - begin:.1f} s")
    return results


def stereo_table(results: dict[str, Collect], methods: list[Method], count: int) -> str:
    from dlsp.report.tables import format_table

    rows = []
    for method in methods:
        c = results[method.name]
        balances = c.values["out_balance"]
        rows.append([method.name, c.median("in_balance"), c.median("out_balance"),
                     float(np.max(np.abs(balances))), c.median("speech_balance"), f"{c.max('same_diff'):.2e}",
                     f"{c.max('mono_diff'):.2e}"])
    return (f"### Stereo ({STEREO_RATE / 1000:g} kHz)\n\n{count} centred sources (the same speech in both channels) "
            f"with independent noise per channel at {STEREO_SNR:g} dB. Balance = level left minus right (median; "
            "`max abs out balance`: the largest over the files); speech balance: of the output's speech part "
            "(projection on the clean speech). `identical in: max abs(L-R) out`: both channels the same input; "
            "`stereo vs mono`: the largest difference between the stereo output's left channel and the left channel "
            "run alone.\n\n"
            + format_table(["method", "in balance dB", "out balance dB", "max abs out balance dB",
                            "speech balance dB", "identical in: max abs(L-R) out", "stereo vs mono max diff"],
                           rows, markdown=True, precision=3))


# ------------------------------------------------------------------------------------------------------ music


def synthetic_music(rate: int, seconds: float, seed: int) -> np.ndarray:
    """Music-like test signal: a melody of harmonic tones (harmonics to 16 kHz, 1/k^1.2) with 5.5 Hz vibrato and
    note envelopes, sustained triads (softer, 1/k^2), and a drum pattern at 120 bpm (kick: decaying 150->50 Hz
    sweep on beats 1 and 3; snare: decaying noise plus 190 Hz on 2 and 4; hi-hat: short noise above 7 kHz on
    every eighth), at -20 dBFS RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros(n)

    def tone(freq: float, start: float, length: float, rolloff: float, attack: float, vibrato: float) -> None:
        i0, i1 = int(start * rate), min(n, int((start + length) * rate))
        local = t[i0:i1] - start
        f = freq * (1 + vibrato * np.sin(2 * np.pi * 5.5 * local))
        phase = 2 * np.pi * np.cumsum(f) / rate
        wave = sum(np.sin(k * phase) / k**rolloff for k in range(1, int(16000 // freq) + 1))
        envelope = np.minimum(1, local / attack) * np.exp(-local / (2 * length))
        envelope *= np.clip((length - local) / 0.03, 0, 1)  # release
        out[i0:i1] += wave * envelope

    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    for i in range(int(seconds / 0.5)):
        tone(440 * 2 ** (scale[int(rng.integers(len(scale)))] / 12), i * 0.5, 0.5, 1.2, 0.02, 0.006)
    for i, root in enumerate([0, 5, 7, 0] * math.ceil(seconds / 8)):
        if i * 2.0 >= seconds:
            break
        for step in (0, 4, 7):
            tone(130.81 * 2 ** ((root + step) / 12), i * 2.0, 2.0, 2.0, 0.15, 0.0)
    for i in range(int(seconds / 0.25)):  # eighth notes at 120 bpm; beat i // 2, counted from 0
        start, i0 = i * 0.25, int(i * 0.25 * rate)
        local = t[i0:] - start
        beat = i // 2
        if i % 2 == 0 and beat % 2 == 0:  # kick on beats 1 and 3
            sweep = 50 + 100 * np.exp(-local / 0.03)
            out[i0:] += 3 * np.sin(2 * np.pi * np.cumsum(sweep) / rate) * np.exp(-local / 0.15)
        if i % 2 == 0 and beat % 2 == 1:  # snare on beats 2 and 4
            burst = rng.standard_normal(local.size) + np.sin(2 * np.pi * 190 * local)
            out[i0:] += 1.5 * burst * np.exp(-local / 0.08)
        hat = band_pass(rng.standard_normal(min(local.size, int(0.1 * rate))), rate, 7000, 20000)
        out[i0:i0 + hat.size] += 2 * hat * np.exp(-local[:hat.size] / 0.02)
    return out * 10 ** (MUSIC_DBFS / 20) / math.sqrt(np.mean(out**2))


def run_music(methods: list[Method], seed: int) -> dict[str, list[float]]:
    """`{method: [band changes..., overall change, SI-SDR]}` for the synthetic music at 48 kHz."""
    music = synthetic_music(MUSIC_RATE, MUSIC_SECONDS, seed)
    results = {}
    for method in methods:
        out = method.run(music, MUSIC_RATE)
        results[method.name] = [*band_changes(music, out, MUSIC_RATE), level_db(out) - level_db(music),
                                sdr(music, out)]
    return results


def music_table(results: dict[str, list[float]], methods: list[Method]) -> str:
    from dlsp.report.tables import format_table

    bands = [f"{low / 1000:g}-{high / 1000:g} kHz dB" for low, high in rate_bands(MUSIC_RATE)]
    rows = [[m.name, *results[m.name]] for m in methods if m.name != NOISY]
    return (f"### Music alone ({MUSIC_RATE / 1000:g} kHz)\n\n{MUSIC_SECONDS:g} s of synthetic music (melody with "
            f"vibrato, triads, kick/snare/hi-hat at 120 bpm, {MUSIC_DBFS:g} dBFS): level change output vs input per "
            "band and overall, SI-SDR output vs input. Measured only.\n\n"
            + format_table(["method", *bands, "overall dB", "SI-SDR dB"], rows, markdown=True, precision=2))


# --------------------------------------------------------------------------------------------------- verdicts


def verdicts(methods: list[Method], rates: dict[str, dict[int, Collect]], levels: dict[str, dict[float, Collect]],
             sweep: dict[str, Collect]) -> str:
    """PASS/FAIL lines per dlsp model for the targets of issue 21."""

    def mark(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    lines = ["### Issue 21 targets", ""]
    rnnoise = sweep.get("RNNoise")
    high = [i for i, band in enumerate(BANDS) if band in HIGH_BANDS]
    for method in methods:
        if not method.dlsp:
            continue
        r = rates[method.name]
        checks = []
        worst = max(abs(r[rate].median(f"clean_band{i}")) for rate in (44100, 48000) for i in range(len(BANDS)))
        checks.append((worst <= BAND_TOLERANCE_DB, "44.1/48 kHz clean speech: every band within "
                       f"+-{BAND_TOLERANCE_DB:g} dB incl. 8-20 kHz (worst |change| {worst:.2f} dB)"))
        least = min(r[rate].median(f"noise_band{i}") for rate in (44100, 48000) for i in high)
        checks.append((least >= HIGH_NOISE_REDUCTION_DB, "44.1/48 kHz noise alone: 8-12 and 12-20 kHz reduced by "
                       f">= {HIGH_NOISE_REDUCTION_DB:g} dB (least {least:.2f} dB)"))
        g8, g16 = r[8000].mean("gain_band"), r[SR].mean("gain_band")
        low, spread = paired_difference(r[8000].values["gain_low"], r[SR].values["gain_low"])
        checks.append((g8 >= g16, f"8 kHz input: SI-SDR gain (band-matched) {g8:.2f} dB >= {g16:.2f} dB at 16 kHz "
                       f"(vs the 16 kHz clean: {r[8000].mean('gain'):.2f} dB; in the common 0-"
                       f"{COMMON_BAND_HZ / 1000:g} kHz band: {r[8000].mean('gain_low'):.2f} vs "
                       f"{r[SR].mean('gain_low'):.2f} dB, paired difference {low:+.2f} dB +- {spread:.2f} (95%))"))
        conditions = [("clean", "clean input"), *((f"snr{snr:g}", f"extra: noisy input at {snr:g} dB SNR")
                                                  for snr in LEVEL_SNRS)]
        for tag, label in conditions:
            changes = [levels[method.name][level].median(f"asl_{tag}") for level in LEVELS]
            text = ", ".join(f"{change:+.2f}" for change in changes)
            checks.append((all(abs(c) <= LEVEL_TOLERANCE_DB for c in changes), f"{label}: active speech level "
                           f"within +-{LEVEL_TOLERANCE_DB:g} dB at every input level (change at "
                           f"{'/'.join(f'{level:g}' for level in LEVELS)} dBFS: {text} dB)"))
        own = sweep[method.name].median("sdr_clean")
        if rnnoise is None:
            checks.append((None, f"SI-SDR on clean input {own:.2f} dB >= RNNoise's (RNNoise not run)"))
        else:
            ref = rnnoise.median("sdr_clean")
            checks.append((own >= ref, f"SI-SDR on clean input {own:.2f} dB >= RNNoise's {ref:.2f} dB"))
        clipped = int(sum(levels[method.name][level].total("clipped") for level in LEVELS))
        checks.append((clipped == 0, f"no clipped output samples at any level (extra; {clipped} clipped)"))
        lines += [f"{mark(ok)}  {method.name}: {text}" for ok, text in checks]
    return "\n".join(lines)


def header(items: list[Item], methods: list[Method], seconds: float) -> str:
    kinds = list(dict.fromkeys(item.kind for item in items))
    corpora = {corpus: sum(item.corpus == corpus for item in items) for corpus in dict.fromkeys(i.corpus
                                                                                               for i in items)}
    return (f"## Denoising at any rate, level and SNR (issue 21), {time.strftime('%Y-%m-%d')}\n\n"
            f"{len(items)} cross-corpus files of {seconds:g} s ({len(kinds)} held-out noise kinds; speech: "
            + ", ".join(f"{n} {c}" for c, n in corpora.items())
            + f"), 1 thread. Methods: {', '.join(m.name for m in methods)}. The data is 16 kHz: at 44.1/48 kHz "
            "nothing lies above 8 kHz but the added bands (speech: white noise following the speech's 4-8 kHz "
            f"envelope, 8-20 kHz, {AIR_DB:g} dB re the speech; noise: white noise following the noise's 4-8 kHz "
            "envelope at its 4-8 kHz power density, 8-20 kHz); 8 kHz renderings are band-limited to 4 kHz.")


if __name__ == "__main__":
    sys.exit(main())

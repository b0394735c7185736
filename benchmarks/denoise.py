"""Speech denoising benchmark: dlsp models vs noisereduce and RNNoise on held-out real recordings.

The test set comes from ../shared/data at 16 kHz: speakers and noise recordings of the test split that the
default model's recipe holds out (`dlsp.denoise.data.mixing_splits`, same seed and fractions), joined into
utterances of about 4 s and mixed at -5, 0, 5 and 10 dB. Every method sees the same mixtures in the same run,
on one thread; RTF = processing seconds / audio seconds; latency = the algorithmic delay of running the method on
a stream (for dlsp models `StreamingDenoiser.latency_seconds`: the STFT window plus any lookahead frames).
dlsp models run as `dlsp denoise run` runs them (engine auto: the default model with onnxruntime, from the ONNX
export shipped beside it, on one onnxruntime thread); the default also runs once more with the torch engine.
Prints one markdown table.

    .venv/bin/python benchmarks/denoise.py                       # default model + runs/denoise_* models
    .venv/bin/python benchmarks/denoise.py --model linear=runs/denoise_linear/best.pt --mixtures 48
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One thread for every method, BLAS included: OpenBLAS reads this when numpy loads, so it is set before the import.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

SNRS = (-5.0, 0.0, 5.0, 10.0)
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="extra dlsp models")
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="also benchmark RUNS/denoise_*/best.pt")
    parser.add_argument("--mixtures", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each test utterance")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default=str(ROOT / "bench_out" / "denoise"))
    parser.add_argument("--no-peers", action="store_true", help="skip noisereduce and RNNoise")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script
    from dlsp.denoise.evaluate import evaluate_enhancer

    data = data_folder(args.data)
    out = Path(args.out)
    pairs = make_test_set(data, out / "mixtures", args.mixtures, args.seconds, args.seed)
    methods = [("noisy input", Identity())]
    if not args.no_peers:
        methods += [("noisereduce", NoiseReduce()), ("RNNoise", RNNoise())]
    methods += [(name, DlspModel(path, engine)) for name, path, engine in dlsp_models(args.model, Path(args.runs))]
    if len({name for name, _ in methods}) != len(methods):
        print("two methods share a name; rename one with --model NAME=PATH", file=sys.stderr)
        return 2
    results = {}
    for name, enhancer in methods:
        print(f"evaluating {name} ...", file=sys.stderr)
        results[name] = evaluate_enhancer(enhancer, pairs, 16000, progress=False, label=name).summary()
    print(table(results, {name: enhancer.latency for name, enhancer in methods}, len(pairs)))
    return 0


def make_test_set(data: Path, out: Path, count: int, seconds: float, seed: int) -> list[tuple]:
    """Held-out mixtures written as clean/noisy wav pairs; returns `(name, clean, noisy, snr)` tuples."""
    from dlsp.audio.io import load_audio, save_audio
    from dlsp.audio.mixing import fit_noise, mix_at_snr
    from dlsp.config import load_config
    from dlsp.denoise.data import mixing_splits
    from dlsp.denoise.train import DenoiseConfig

    config = load_config(DenoiseConfig, ROOT / "recipes" / "denoise_default.yaml")
    splits = mixing_splits(*default_folders(data), config.data, config.train.seed)["test"]
    clean_pool = [load_audio(p, sample_rate=16000, allow_silent=True)[0] for p in splits["clean"]]
    noise_pool = [load_audio(p, sample_rate=16000, allow_silent=True)[0] for p in splits["noise"]]
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(count):
        snr = SNRS[k % len(SNRS)]
        parts, total = [], 0
        while total < seconds * 16000:
            utterance = clean_pool[int(rng.integers(len(clean_pool)))]
            parts += [utterance, np.zeros(int(rng.uniform(0.1, 0.4) * 16000), np.float32)]
            total += len(utterance) + len(parts[-1])
        clean = np.concatenate(parts)[: int(seconds * 16000)]
        noise = fit_noise(noise_pool[int(rng.integers(len(noise_pool)))], len(clean), rng)
        mix = mix_at_snr(clean, noise, snr, rng=rng, level_db=float(rng.uniform(-30, -20)))
        name = f"test_{k:03d}_snr{snr:+.0f}"
        save_audio(out / "clean" / f"{name}.wav", mix.clean, 16000, subtype="FLOAT")
        save_audio(out / "noisy" / f"{name}.wav", mix.noisy, 16000, subtype="FLOAT")
        pairs.append((name, out / "clean" / f"{name}.wav", out / "noisy" / f"{name}.wav", snr))
    return pairs


def default_folders(data: Path) -> tuple[list[Path], list[Path]]:
    speech = [data / "speech" / "fsdd", data / "speech" / "arabic_commands"]
    noise = [data / "noise" / "household_street", data / "noise" / "speech_commands_background"]
    return speech, noise


def dlsp_models(extra: list[str], runs: Path) -> list[tuple[str, Path | None, str | None]]:
    """`(name, model file, engine)`: engine `None` is what `dlsp denoise run` picks."""
    from dlsp.denoise.model_file import DEFAULT_MODEL_NAME
    from dlsp.paths import PRETRAINED_DIR

    models: list[tuple[str, Path | None, str | None]] = []
    if (PRETRAINED_DIR / DEFAULT_MODEL_NAME).exists():
        models.append(("dlsp default (shipped)", None, None))
        models.append(("dlsp default, torch engine", None, "torch"))
    for run in sorted(runs.glob("denoise_*/best.pt")):
        models.append((f"dlsp run {run.parent.name.removeprefix('denoise_')}", run, None))
    for item in extra:
        name, _, path = item.partition("=")
        models.append((name, Path(path), None))
    return models


class Identity:
    sample_rate = 16000
    latency = "0"

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return audio


class NoiseReduce:
    """noisereduce's non-stationary spectral gating (its default), one job."""

    sample_rate = 16000
    latency = "whole file"  # its noise estimate smooths over the recording: not a streaming method

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import noisereduce

        return noisereduce.reduce_noise(y=audio, sr=sample_rate, n_jobs=1).astype(np.float32)


class RNNoise:
    """RNNoise (pyrnnoise's bundled weights) at its native 48 kHz: resample, 480-sample frames, resample back.

    RNNoise delays its output by two frames (960 samples at 48 kHz, measured by cross-correlation with the
    clean signal); the delay is removed so the metrics compare aligned signals.
    """

    sample_rate = 16000
    delay = 960
    latency = f"{delay / 48:.1f}"

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import soxr
        from pyrnnoise.rnnoise import FRAME_SIZE, create, destroy, process_frame

        x48 = soxr.resample(audio, sample_rate, 48000)
        n = len(x48)
        padded = np.concatenate([x48, np.zeros(FRAME_SIZE * 2 - n % FRAME_SIZE, np.float32)])
        pcm = np.clip(padded * 32768, -32768, 32767).astype(np.int16)
        state = create()
        try:
            frames = [process_frame(state, pcm[i:i + FRAME_SIZE])[0] for i in range(0, len(pcm), FRAME_SIZE)]
        finally:
            destroy(state)
        y48 = np.concatenate([np.asarray(f, dtype=np.float32).reshape(-1) for f in frames]) / 32768
        y48 = y48[self.delay:self.delay + n]
        return soxr.resample(y48, 48000, sample_rate)[: len(audio)].astype(np.float32)


class DlspModel:
    def __init__(self, path: Path | None, engine: str | None) -> None:
        from dlsp.denoise.enhance import Denoiser
        from dlsp.denoise.streaming import StreamingDenoiser

        self.denoiser = Denoiser.from_file(path, device="cpu", engine=engine, onnx_threads=1)
        self.sample_rate = self.denoiser.sample_rate
        self.latency = f"{StreamingDenoiser(self.denoiser.model).latency_seconds * 1000:.1f}"

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.denoiser.enhance(audio, sample_rate)


def table(results: dict[str, dict], latencies: dict[str, str], n_files: int) -> str:
    from dlsp.report.tables import format_table

    rnnoise = results.get("RNNoise")
    rows = []
    for name, summary in results.items():
        rtf = summary["rtf"]
        ratio = rtf / rnnoise["rtf"] if rnnoise and name != "noisy input" else float("nan")
        rows.append([name, summary["si_sdr"]["after"], summary["si_sdr"]["improvement"], summary["pesq"]["after"],
                     summary["stoi"]["after"], rtf, ratio, latencies[name]])
    header = (f"{n_files} held-out mixtures (SNR {', '.join(f'{s:+.0f}' for s in SNRS)} dB), 16 kHz, 1 thread, "
              f"{time.strftime('%Y-%m-%d')}\n\n")
    return header + format_table(["method", "SI-SDR dB", "SI-SDR gain dB", "PESQ wb", "STOI", "RTF",
                                  "RTF / RNNoise", "latency ms"], rows, markdown=True, precision=3)


if __name__ == "__main__":
    sys.exit(main())

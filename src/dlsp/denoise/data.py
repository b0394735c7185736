"""Training data for denoisers: audio pools per split and sources that cut fixed-length training segments.

Two sources:
- `MixingSource`: clean speech and noise mixed on the fly, with a fresh SNR, level, noise crop and utterance
  choice for every segment of every epoch (far more variety than a fixed corpus).
- `PairSource`: aligned noisy/clean recordings (VoiceBank-DEMAND, `dlsp data mix` output), cut at random
  offsets.
Every segment is drawn from its own generator keyed by (seed, epoch, index), so an epoch is reproducible on
its own, which makes resumed training see exactly the data an uninterrupted run would have seen.
Pools can be cached (decoded and resampled) under `CACHE/{train,validation,test}` to start repeated runs fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlsp.audio.augment import change_speed, random_eq
from dlsp.audio.io import is_silent, list_audio_files, load_audio
from dlsp.audio.mixing import SnrSpec, fit_noise, mix_at_snr, parse_snr_spec
from dlsp.data import index as dataset_index
from dlsp.data.noisy_corpus import assign_clean_splits, assign_noise_splits, clean_layout
from dlsp.data.pairs import index_pairs
from dlsp.errors import DlspError
from dlsp.fileio import atomic_path, ensure_dir, write_json

SPLITS = ("train", "val", "test")
CACHE_DIRS = {"train": "train", "val": "validation", "test": "test"}


@dataclass(frozen=True)
class DenoiseDataConfig:
    """How training segments are made."""

    sample_rate: int = 16000
    segment_seconds: float = 2.0
    snr: str = "-5:20"
    level_db: str | None = "-35:-15"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    segments_per_epoch: int = 2048
    val_segments: int = 256
    clean_format: str = "auto"
    augment_noise: bool = True
    synthetic_noise_files: int = 0
    # Speed perturbation of training speech: each utterance resampled by a random factor in [1 - x, 1 + x] with
    # probability 0.7 (pitch, formants and tempo move together, like a new speaker); 0 turns it off.
    speech_speed: float = 0.0
    # Training noise, with augment_noise: each crop played at a random speed in [1 - x, 1 + x] (probability 0.5;
    # 0 turns it off), and coloured by 3 random peaking bands of up to +-`noise_eq` dB (probability 0.5; 0: off).
    noise_speed: float = 0.0
    noise_eq: float = 0.0
    # Training speech coloured the same way (another microphone or room), with probability 0.5; 0 turns it off.
    speech_eq: float = 0.0


@dataclass
class AudioPool:
    """Named recordings of one split, decoded at one sample rate."""

    names: list[str]
    audio: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def seconds(self) -> float:
        return float(sum(len(a) for a in self.audio))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


class MixingSource:
    """Segments of clean speech (utterances joined with short pauses) mixed with noise on the fly."""

    def __init__(self, clean: AudioPool, noise: AudioPool, snr: SnrSpec, level: SnrSpec | None,
                 segment_samples: int, sample_rate: int, augment_noise: bool = False,
                 speech_speed: float = 0.0, noise_speed: float = 0.0, noise_eq: float = 0.0,
                 speech_eq: float = 0.0) -> None:
        if not len(clean) or not len(noise):
            raise DlspError("a mixing source needs clean speech and noise")
        for name, value in (("speech_speed", speech_speed), ("noise_speed", noise_speed)):
            if not 0.0 <= value < 0.5:
                raise DlspError(f"{name} must be in [0, 0.5), got {value}")
        for name, value in (("noise_eq", noise_eq), ("speech_eq", speech_eq)):
            if not 0.0 <= value <= 24.0:
                raise DlspError(f"{name} must be in [0, 24] dB, got {value}")
        self.clean, self.noise, self.snr, self.level = clean, noise, snr, level
        self.segment_samples, self.sample_rate = segment_samples, sample_rate
        self.augment_noise, self.speech_speed = augment_noise, speech_speed
        self.noise_speed, self.noise_eq, self.speech_eq = noise_speed, noise_eq, speech_eq

    def segment(self, seed: int, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One `(noisy, clean)` segment, each `(segment_samples,)`."""
        rng = _rng(seed, epoch, index)
        clean = self._speech(rng)
        noise = self._noise(rng, len(clean))
        level = None if self.level is None else self.level.sample(rng)
        mix = mix_at_snr(clean, noise, self.snr.sample(rng), rng=rng, level_db=level)
        return mix.noisy.astype(np.float32), mix.clean.astype(np.float32)

    def _noise(self, rng: np.random.Generator, length: int) -> np.ndarray:
        recording = self.noise.audio[int(rng.integers(len(self.noise)))]
        if not self.augment_noise:
            return fit_noise(recording, length, rng)
        noise = self._noise_crop(recording, length, rng)
        # A few noise recordings go a long way when each is heard through a different colouring and sometimes
        # on top of another: the model learns noise in general rather than these recordings.
        if rng.random() < 0.3:
            other = fit_noise(self.noise.audio[int(rng.integers(len(self.noise)))], length, rng)
            gain = 10 ** (rng.uniform(-12, 0) / 20) * _rms(noise) / max(_rms(other), 1e-9)
            noise = noise + gain * other
        if rng.random() < 0.5:
            tilt = rng.uniform(-0.8, 0.8)  # first-order tilt: > 0 brightens, < 0 darkens
            noise = np.append(noise[:1], noise[1:] - tilt * noise[:-1]).astype(np.float32)
        if self.noise_eq and rng.random() < 0.5:
            noise = random_eq(noise, rng, self.sample_rate, self.noise_eq)
        return noise if not is_silent(noise) else fit_noise(self.noise.audio[0], length, rng)

    def _noise_crop(self, recording: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        if not self.noise_speed or rng.random() >= 0.5:
            return fit_noise(recording, length, rng)
        factor = rng.uniform(1.0 - self.noise_speed, 1.0 + self.noise_speed)
        # Crop what plays for `length` samples at the new speed (plus a margin for the resampler's rounding).
        return change_speed(fit_noise(recording, math.ceil(length * factor) + 8, rng), factor,
                            self.sample_rate)[:length]

    def _speech(self, rng: np.random.Generator) -> np.ndarray:
        # Join random utterances with short pauses until the segment is full, then take a random window.
        parts, total = [], 0
        while total < self.segment_samples:
            utterance = self._perturbed(self.clean.audio[int(rng.integers(len(self.clean)))], rng)
            gap = np.zeros(int(rng.uniform(0.0, 0.25) * self.sample_rate), np.float32)
            parts += [utterance, gap]
            total += len(utterance) + len(gap)
        speech = np.concatenate(parts)
        start = int(rng.integers(0, len(speech) - self.segment_samples + 1))
        segment = speech[start:start + self.segment_samples]
        if self.speech_eq and rng.random() < 0.5:
            segment = random_eq(segment, rng, self.sample_rate, self.speech_eq)
        return segment if not is_silent(segment) else self._speech(rng)

    def _perturbed(self, utterance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Few speakers go further when each is also heard a little higher or lower (Ko et al., 2015, "Audio
        # augmentation for speech recognition"): played at `factor` times the speed, every frequency scales by it.
        if not self.speech_speed or rng.random() >= 0.7:
            return utterance
        return change_speed(utterance, rng.uniform(1.0 - self.speech_speed, 1.0 + self.speech_speed),
                            self.sample_rate)


class PairSource:
    """Random aligned crops of noisy/clean pairs (zero-padded when a pair is shorter than a segment)."""

    def __init__(self, noisy: AudioPool, clean: AudioPool, segment_samples: int) -> None:
        if not len(noisy):
            raise DlspError("a pair source needs at least one pair")
        self.noisy, self.clean, self.segment_samples = noisy, clean, segment_samples

    def segment(self, seed: int, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(seed, epoch, index)
        k = int(rng.integers(len(self.noisy)))
        noisy, clean = self.noisy.audio[k], self.clean.audio[k]
        n = self.segment_samples
        if len(noisy) <= n:
            pad = n - len(noisy)
            return np.pad(noisy, (0, pad)), np.pad(clean, (0, pad))
        start = int(rng.integers(0, len(noisy) - n + 1))
        return noisy[start:start + n], clean[start:start + n]


def batches(source: MixingSource | PairSource, seed: int, epoch: int, count: int,
            batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`count` segments of an epoch as `(noisy, clean)` batches, each `(batch, segment_samples)`."""
    for start in range(0, count, batch_size):
        pairs = [source.segment(seed, epoch, i) for i in range(start, min(count, start + batch_size))]
        yield np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


@dataclass
class DenoiseData:
    """The sources of the three splits and what went into each (for the run folder)."""

    sources: dict[str, MixingSource | PairSource]
    files: dict[str, dict[str, list[str]]]


def mixing_splits(clean_dirs: Sequence[str | os.PathLike[str]], noise_dirs: Sequence[str | os.PathLike[str]],
                  config: DenoiseDataConfig, seed: int) -> dict[str, dict[str, list[Path]]]:
    """Which clean files and noise files each split gets: speakers and noise recordings disjoint across splits
    (the same assignment `dlsp data mix` makes for the same seed and fractions). Each clean folder is split on
    its own, so every corpus contributes speakers to every split."""
    clean_splits: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for clean_dir in clean_dirs:
        layout = clean_layout(clean_dir, config.clean_format)
        items = dataset_index.index_dataset(clean_dir, format=layout)
        for split, chosen in assign_clean_splits(items, config.split, seed, clean_dir).items():
            clean_splits[split] += [item.path for item in chosen]
    noise_files = [f for d in noise_dirs for f in list_audio_files(d)]
    if not noise_files:
        raise DlspError("noise folder has no audio files", noise_dirs[0])
    noise_splits, _ = assign_noise_splits(noise_files, config.split, seed)
    return {split: {"clean": clean_splits[split], "noise": list(noise_splits[split])}
            for split in SPLITS if clean_splits[split]}


def mixing_data(clean_dirs: Sequence[str | os.PathLike[str]], noise_dirs: Sequence[str | os.PathLike[str]],
                config: DenoiseDataConfig, seed: int, cache: str | os.PathLike[str] | None = None,
                progress: bool = True) -> DenoiseData:
    """On-the-fly mixing sources for the splits of `mixing_splits`."""
    splits = mixing_splits(clean_dirs, noise_dirs, config, seed)
    snr = parse_snr_spec(config.snr)
    level = None if config.level_db is None else parse_snr_spec(config.level_db, "level")
    segment = round(config.segment_seconds * config.sample_rate)
    sources, files = {}, {}
    for split, chosen in splits.items():
        clean_pool = load_pool(chosen["clean"], config.sample_rate, cache, f"{split}-clean", progress)
        noise_pool = load_pool(chosen["noise"], config.sample_rate, cache, f"{split}-noise", progress)
        if split == "train" and config.synthetic_noise_files:
            noise_pool = _with_synthetic_noise(noise_pool, config.synthetic_noise_files, config.sample_rate, seed)
        # Validation and test are heard as recorded.
        augment = dict(augment_noise=config.augment_noise, speech_speed=config.speech_speed,
                       noise_speed=config.noise_speed, noise_eq=config.noise_eq,
                       speech_eq=config.speech_eq) if split == "train" else {}
        sources[split] = MixingSource(clean_pool, noise_pool, snr, level, segment, config.sample_rate, **augment)
        files[split] = {kind: [str(p) for p in paths] for kind, paths in chosen.items()}
    return DenoiseData(sources, files)


def _with_synthetic_noise(pool: AudioPool, per_kind: int, sample_rate: int, seed: int) -> AudioPool:
    """Add `per_kind` synthetic recordings of every noise kind (8 s each) to a training noise pool: more kinds
    of noise than a few real recordings offer, at no cost in data."""
    from dlsp.audio.noises import NOISE_KINDS, synth_noise

    names, audio = list(pool.names), list(pool.audio)
    for k, kind in enumerate(NOISE_KINDS):
        for n in range(per_kind):
            names.append(f"synthetic:{kind}_{n:02d}")
            audio.append(synth_noise(kind, 8.0, sample_rate, rng=_rng(seed, 1000 + k, n)))
    return AudioPool(names, audio)


def pair_data(root: str | os.PathLike[str], config: DenoiseDataConfig, seed: int,
              cache: str | os.PathLike[str] | None = None, progress: bool = True) -> DenoiseData:
    """Pairs from a clean/noisy layout, keeping its splits when it has them (else speaker-disjoint ones)."""
    pairs = index_pairs(root)
    if not all(p.split in SPLITS for p in pairs):
        pairs = [p for group in dataset_index.speaker_disjoint_split(pairs, config.split, seed,
                                                                     respect_existing=False).values()
                 for p in group]
    segment = round(config.segment_seconds * config.sample_rate)
    sources, files = {}, {}
    for split in SPLITS:
        chosen = [p for p in pairs if p.split == split]
        if not chosen:
            continue
        noisy = load_pool([p.noisy for p in chosen], config.sample_rate, cache, f"{split}-noisy", progress)
        clean = load_pool([p.clean for p in chosen], config.sample_rate, cache, f"{split}-clean", progress)
        sources[split] = PairSource(noisy, clean, segment)
        files[split] = {"clean": [str(p.clean) for p in chosen], "noisy": [str(p.noisy) for p in chosen]}
    return DenoiseData(sources, files)


def load_pool(paths: Sequence[Path], sample_rate: int, cache: str | os.PathLike[str] | None, name: str,
              progress: bool = True) -> AudioPool:
    """Decode and resample `paths`, through the cache when one is given. Silent files are skipped."""
    key = _cache_key(paths, sample_rate)
    if cache is not None:
        cached = _read_cache(Path(cache), name, key)
        if cached is not None:
            return cached
    from tqdm.auto import tqdm

    names, audio = [], []
    for path in tqdm(paths, desc=f"loading {name}", unit="file", disable=not progress, leave=False):
        signal, _ = load_audio(path, sample_rate=sample_rate, allow_silent=True)
        if not is_silent(signal):
            names.append(str(path))
            audio.append(signal)
    if not audio:
        raise DlspError(f"no usable (non-silent) audio for {name}", paths[0] if paths else None)
    pool = AudioPool(names, audio)
    if cache is not None:
        _write_cache(Path(cache), name, key, pool)
    return pool


def _cache_key(paths: Sequence[Path], sample_rate: int) -> str:
    digest = hashlib.sha256(str(sample_rate).encode())
    for path in paths:
        stat = Path(path).stat()
        digest.update(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _cache_files(cache: Path, name: str) -> tuple[Path, Path]:
    split, kind = name.split("-", 1)
    folder = cache / CACHE_DIRS[split]
    return folder / f"{kind}.npy", folder / f"{kind}.json"


def _read_cache(cache: Path, name: str, key: str) -> AudioPool | None:
    data_path, index_path = _cache_files(cache, name)
    if not (data_path.exists() and index_path.exists()):
        return None
    try:
        index = json.loads(index_path.read_text())
        if index.get("key") != key:
            return None
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError):
        return None  # a damaged cache is rebuilt, never trusted
    offsets = index["offsets"]
    audio = [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    return AudioPool(index["names"], audio)


def _write_cache(cache: Path, name: str, key: str, pool: AudioPool) -> None:
    data_path, index_path = _cache_files(cache, name)
    ensure_dir(data_path.parent)
    offsets = np.cumsum([0, *(len(a) for a in pool.audio)]).tolist()
    with atomic_path(data_path) as tmp:
        np.save(tmp, np.concatenate(pool.audio).astype(np.float32), allow_pickle=False)
    write_json(index_path, {"key": key, "names": pool.names, "offsets": offsets})

"""Training data for denoisers: audio pools per split and sources that cut fixed-length training segments.

Two sources:
- `MixingSource`: clean speech and noise mixed on the fly, with a fresh SNR, level, noise crop and utterance
  choice for every segment of every epoch (far more variety than a fixed corpus).
- `PairSource`: aligned noisy/clean recordings (VoiceBank-DEMAND, `dlsp data mix` output), cut at random
  offsets.
Every segment is drawn from its own generator keyed by (seed, epoch, index), so an epoch is reproducible on
its own, which makes resumed training see exactly the data an uninterrupted run would have seen.
Pools can be cached (decoded and resampled) under `CACHE/{train,validation,test}` to start repeated runs fast.

What a mixing source teaches (all of it set in `DenoiseDataConfig`, documented field by field):
- `exclude` keeps hold-out sets (`@crosscorpus`, `dlsp.data.holdout`) out of every split, so a benchmark on them
  measures what ships.
- `narrowband` decides what happens to clean speech whose content stops below the model's Nyquist frequency
  (`dlsp.audio.bandwidth`): `limit` (default) low-passes the noise of its mixtures at the speech's band, so the
  model never hears noise where the speech could not be and so never learns that a band is noise just because
  this corpus has no speech there (it also learns to leave narrowband input alone); `exclude` drops such
  recordings; `keep` mixes them as they are (what dlsp did before; not recommended for wideband models).
- `balance: corpus` draws each segment's speech from one corpus (clean folder) chosen with probability in
  proportion to the square root of its minutes of speech, then each utterance from a speaker chosen uniformly and
  a file of theirs in proportion to its length, and each noise from a noise kind chosen uniformly: minutes of
  speech and kinds of noise count, not file counts, so one-second words or one talkative corpus cannot dominate.
- `babble`, `reverb` and `clipping` are probabilities of babble noise (3-8 training utterances summed), a
  simulated room (target: the early reflections, `dlsp.audio.rooms`) and a clipped input (target unclipped);
  `narrow_input` of a whole mixture, input and target, low-passed at a telephone-to-wideband cutoff.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlsp.audio.augment import change_speed, random_eq
from dlsp.audio.bandwidth import NARROWBAND_FRACTION, band_limit, effective_bandwidth
from dlsp.audio.io import is_silent, list_audio_files, load_audio
from dlsp.audio.mixing import SnrSpec, fit_noise, mix_at_snr, parse_snr_spec
from dlsp.audio.rooms import reverberate, simulate_rir
from dlsp.data import index as dataset_index
from dlsp.data.holdout import expand_patterns, split_held_out
from dlsp.data.noisy_corpus import assign_clean_splits, assign_noise_splits, clean_layout, noise_recording
from dlsp.data.pairs import index_pairs
from dlsp.errors import DlspError
from dlsp.fileio import atomic_path, ensure_dir, write_json

SPLITS = ("train", "val", "test")
CACHE_DIRS = {"train": "train", "val": "validation", "test": "test"}
NARROWBAND_POLICIES = ("limit", "exclude", "keep")
BALANCE_MODES = ("files", "corpus")
MIN_NOISE_SECONDS = 0.1  # shorter noise files are skipped (a few samples looped are a tone, not a noise)
NARROW_CUTOFFS_HZ = (3400.0, 4000.0, 5500.0)  # telephone, 8 kHz recordings, wideband codecs at low rates


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
    # Files never used in any split: fnmatch patterns over `<folder name>/<path inside it>`, or `@NAME` for a
    # hold-out set of dlsp.data.holdout (`@crosscorpus`: the cross-corpus benchmark's speakers and noise kinds).
    exclude: tuple[str, ...] = ()
    # Clean speech whose content stops below 0.9 x Nyquist: limit | exclude | keep (module docstring).
    narrowband: str = "limit"
    # files: every file equally likely (the studies' way); corpus: by minutes per corpus and speaker, noise by kind.
    balance: str = "files"
    # Probabilities, for training segments only: babble noise, a simulated room, a clipped input.
    babble: float = 0.0
    reverb: float = 0.0
    clipping: float = 0.0
    # Probability that a training mixture, input and target alike, is low-passed at a random telephone-to-wideband
    # cutoff (NARROW_CUTOFFS_HZ): what an 8 kHz or band-limited recording looks like to the model.
    narrow_input: float = 0.0
    reverb_rooms: int = 96  # simulated rooms in the training bank (about 0.3 s each to make)


@dataclass
class AudioPool:
    """Named recordings of one split, decoded at one sample rate, with what balanced sampling and the
    narrowband rule need: each recording's corpus (its folder), speaker and effective bandwidth in Hz. Empty
    lists mean one corpus, one speaker per file and full band."""

    names: list[str]
    audio: list[np.ndarray]
    corpora: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)
    bandwidths: list[float] = field(default_factory=list)

    def corpus(self, i: int) -> str:
        return self.corpora[i] if self.corpora else ""

    def speaker(self, i: int) -> str:
        return self.speakers[i] if self.speakers else self.names[i]

    def bandwidth(self, i: int) -> float:
        return self.bandwidths[i] if self.bandwidths else math.inf

    def subset(self, keep: Sequence[int]) -> AudioPool:
        pick = lambda values: [values[i] for i in keep] if values else []  # noqa: E731
        return AudioPool(pick(self.names), pick(self.audio), pick(self.corpora), pick(self.speakers),
                         pick(self.bandwidths))

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
                 speech_eq: float = 0.0, balance: str = "files", narrowband: str = "keep", babble: float = 0.0,
                 rirs: Sequence[np.ndarray] = (), reverb: float = 0.0, clipping: float = 0.0,
                 narrow_input: float = 0.0) -> None:
        if not len(clean) or not len(noise):
            raise DlspError("a mixing source needs clean speech and noise")
        for name, value in (("speech_speed", speech_speed), ("noise_speed", noise_speed)):
            if not 0.0 <= value < 0.5:
                raise DlspError(f"{name} must be in [0, 0.5), got {value}")
        for name, value in (("noise_eq", noise_eq), ("speech_eq", speech_eq)):
            if not 0.0 <= value <= 24.0:
                raise DlspError(f"{name} must be in [0, 24] dB, got {value}")
        _check_choice("balance", balance, BALANCE_MODES)
        _check_choice("narrowband", narrowband, NARROWBAND_POLICIES)
        for name, value in (("babble", babble), ("reverb", reverb), ("clipping", clipping),
                            ("narrow_input", narrow_input)):
            if not 0.0 <= value <= 1.0:
                raise DlspError(f"{name} is a probability in [0, 1], got {value}")
        if reverb and not len(rirs):
            raise DlspError("reverb needs room impulse responses")
        self.clean, self.noise, self.snr, self.level = clean, noise, snr, level
        self.segment_samples, self.sample_rate = segment_samples, sample_rate
        self.augment_noise, self.speech_speed = augment_noise, speech_speed
        self.noise_speed, self.noise_eq, self.speech_eq = noise_speed, noise_eq, speech_eq
        self.balance, self.narrowband, self.babble = balance, narrowband, babble
        self.rirs, self.reverb, self.clipping, self.narrow_input = list(rirs), reverb, clipping, narrow_input
        self.full_band = NARROWBAND_FRACTION * sample_rate / 2
        if balance == "corpus":
            self._corpora = _CorpusSampler(clean)
            kinds: dict[str, list[int]] = {}
            for i, name in enumerate(noise.names):
                kinds.setdefault(noise.corpus(i) + "/" + noise_recording(Path(name))[0], []).append(i)
            self._noise_kinds = list(kinds.values())

    def segment(self, seed: int, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One `(noisy, clean)` segment, each `(segment_samples,)`; the clean one is the training target."""
        rng = _rng(seed, epoch, index)
        clean, band = self._speech(rng)
        noise = self._noise(rng, len(clean))
        level = None if self.level is None else self.level.sample(rng)
        early = None
        if self.reverb and rng.random() < self.reverb:
            clean, early = reverberate(clean, self.rirs[int(rng.integers(len(self.rirs)))], self.sample_rate)
        if self.narrowband == "limit" and band < self.full_band:
            noise = self._band_limited(noise, band, rng)
        mix = mix_at_snr(clean, noise, self.snr.sample(rng), rng=rng, level_db=level)
        noisy = mix.noisy
        target = mix.clean if early is None else (early.astype(np.float64) * mix.gain).astype(np.float32)
        if self.narrow_input and rng.random() < self.narrow_input:
            cutoff = min(float(rng.choice(NARROW_CUTOFFS_HZ)), band)
            if cutoff < self.sample_rate / 2:
                noisy = band_limit(noisy, self.sample_rate, cutoff)
                target = band_limit(target, self.sample_rate, cutoff)
        if self.clipping and rng.random() < self.clipping:
            # A recorder driven too hard: the input is clipped at 30-90% of its peak; the target is not.
            limit = float(np.max(np.abs(noisy))) * rng.uniform(0.3, 0.9)
            noisy = np.clip(noisy, -limit, limit)
        return noisy.astype(np.float32), target

    def _band_limited(self, noise: np.ndarray, band: float, rng: np.random.Generator) -> np.ndarray:
        # A crop whose every sound lies above the speech's band (a whistle, hiss) has nothing left: draw another.
        for _ in range(16):
            limited = band_limit(noise, self.sample_rate, band)
            if not is_silent(limited):
                return limited
            noise = self._noise(rng, len(noise))
        raise DlspError(f"no training noise has content below {band:.0f} Hz, the band of some clean speech; "
                        "add broadband noise or set data.narrowband to exclude")

    def _noise(self, rng: np.random.Generator, length: int) -> np.ndarray:
        if self.babble and rng.random() < self.babble:
            return self._babble(rng, length)
        recording = self.noise.audio[self._noise_index(rng)]
        if not self.augment_noise:
            return fit_noise(recording, length, rng)
        noise = self._noise_crop(recording, length, rng)
        # A few noise recordings go a long way when each is heard through a different colouring and sometimes
        # on top of another: the model learns noise in general rather than these recordings.
        if rng.random() < 0.3:
            other = fit_noise(self.noise.audio[self._noise_index(rng)], length, rng)
            gain = 10 ** (rng.uniform(-12, 0) / 20) * _rms(noise) / max(_rms(other), 1e-9)
            noise = noise + gain * other
        if rng.random() < 0.5:
            tilt = rng.uniform(-0.8, 0.8)  # first-order tilt: > 0 brightens, < 0 darkens
            noise = np.append(noise[:1], noise[1:] - tilt * noise[:-1]).astype(np.float32)
        if self.noise_eq and rng.random() < 0.5:
            noise = random_eq(noise, rng, self.sample_rate, self.noise_eq)
        return noise if not is_silent(noise) else fit_noise(self.noise.audio[0], length, rng)

    def _noise_index(self, rng: np.random.Generator) -> int:
        if self.balance == "corpus":
            kind = self._noise_kinds[int(rng.integers(len(self._noise_kinds)))]
            return kind[int(rng.integers(len(kind)))]
        return int(rng.integers(len(self.noise)))

    def _babble(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """3-8 talkers at once, each a run of training utterances without pauses at a level within +-6 dB."""
        talkers = []
        for _ in range(int(rng.integers(3, 9))):
            parts, total = [], 0
            while total < length:
                parts.append(self.clean.audio[int(rng.integers(len(self.clean)))])
                total += len(parts[-1])
            talker = fit_noise(np.concatenate(parts), length, rng)
            talkers.append(talker * 10 ** (rng.uniform(-6, 6) / 20) / max(_rms(talker), 1e-9))
        babble = np.sum(talkers, axis=0).astype(np.float32)
        return babble if not is_silent(babble) else fit_noise(self.noise.audio[0], length, rng)

    def _noise_crop(self, recording: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        if not self.noise_speed or rng.random() >= 0.5:
            return fit_noise(recording, length, rng)
        factor = rng.uniform(1.0 - self.noise_speed, 1.0 + self.noise_speed)
        # Crop what plays for `length` samples at the new speed (plus a margin for the resampler's rounding).
        return change_speed(fit_noise(recording, math.ceil(length * factor) + 8, rng), factor,
                            self.sample_rate)[:length]

    def _speech(self, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """A segment of speech and the band it has content in (the narrowest of its utterances', in Hz)."""
        # Join random utterances with short pauses until the segment is full, then take a random window.
        draw = self._corpora.drawer(rng) if self.balance == "corpus" else (
            lambda: int(rng.integers(len(self.clean))))
        parts, total, band = [], 0, math.inf
        while total < self.segment_samples:
            k = draw()
            band = min(band, self.clean.bandwidth(k))
            utterance = self._perturbed(self.clean.audio[k], rng)
            gap = np.zeros(int(rng.uniform(0.0, 0.25) * self.sample_rate), np.float32)
            parts += [utterance, gap]
            total += len(utterance) + len(gap)
        speech = np.concatenate(parts)
        start = int(rng.integers(0, len(speech) - self.segment_samples + 1))
        segment = speech[start:start + self.segment_samples]
        if self.speech_eq and rng.random() < 0.5:
            segment = random_eq(segment, rng, self.sample_rate, self.speech_eq)
        return (segment, band) if not is_silent(segment) else self._speech(rng)

    def _perturbed(self, utterance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Few speakers go further when each is also heard a little higher or lower (Ko et al., 2015, "Audio
        # augmentation for speech recognition"): played at `factor` times the speed, every frequency scales by it.
        if not self.speech_speed or rng.random() >= 0.7:
            return utterance
        return change_speed(utterance, rng.uniform(1.0 - self.speech_speed, 1.0 + self.speech_speed),
                            self.sample_rate)


class _CorpusSampler:
    """Balanced draws of utterances: a corpus per segment (probability in proportion to the square root of its
    seconds of speech), then per utterance a speaker of it uniformly and one of their files in proportion to its
    length (a uniformly drawn moment of that speaker's speech)."""

    def __init__(self, pool: AudioPool) -> None:
        speakers: dict[str, dict[str, list[int]]] = {}
        for i in range(len(pool)):
            speakers.setdefault(pool.corpus(i), {}).setdefault(pool.speaker(i), []).append(i)
        self.corpora = [list(by_speaker.values()) for _, by_speaker in sorted(speakers.items())]
        seconds = np.array([sum(len(pool.audio[i]) for files in corpus for i in files)
                            for corpus in self.corpora], dtype=np.float64)
        self.corpus_p = np.sqrt(seconds) / np.sqrt(seconds).sum()
        self.file_p = [[np.array([len(pool.audio[i]) for i in files], np.float64) / sum(len(pool.audio[i])
                                                                                         for i in files)
                        for files in corpus] for corpus in self.corpora]

    def drawer(self, rng: np.random.Generator):
        c = int(rng.choice(len(self.corpora), p=self.corpus_p))
        corpus, file_p = self.corpora[c], self.file_p[c]

        def draw() -> int:
            s = int(rng.integers(len(corpus)))
            return corpus[s][int(rng.choice(len(corpus[s]), p=file_p[s]))]

        return draw


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise DlspError(f"data.{name} must be one of {', '.join(choices)}, got {value!r}")


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
    its own, so every corpus contributes speakers to every split. Files matching `config.exclude` are in none."""
    clean = _clean_splits(clean_dirs, config, seed)
    noise = _noise_splits(noise_dirs, config, seed)
    return {split: {"clean": [item.path for item in clean[split]], "noise": noise[split]}
            for split in SPLITS if clean[split]}


def _clean_splits(clean_dirs: Sequence[str | os.PathLike[str]], config: DenoiseDataConfig,
                  seed: int) -> dict[str, list[dataset_index.AudioItem]]:
    exclude = expand_patterns(config.exclude)
    splits: dict[str, list[dataset_index.AudioItem]] = {split: [] for split in SPLITS}
    for clean_dir in clean_dirs:
        layout = clean_layout(clean_dir, config.clean_format)
        items = dataset_index.index_dataset(clean_dir, format=layout)
        if exclude:
            kept = set(split_held_out([item.path for item in items], clean_dir, exclude)[0])
            items = [item for item in items if item.path in kept]
            if not items:
                raise DlspError("every clean file is excluded by data.exclude", clean_dir)
        for split, chosen in assign_clean_splits(items, config.split, seed, clean_dir).items():
            splits[split] += chosen
    return splits


def _noise_splits(noise_dirs: Sequence[str | os.PathLike[str]], config: DenoiseDataConfig,
                  seed: int) -> dict[str, list[Path]]:
    exclude = expand_patterns(config.exclude)
    noise_files = []
    for noise_dir in noise_dirs:
        files = list_audio_files(noise_dir)
        if not files:
            raise DlspError("noise folder has no audio files", noise_dir)
        noise_files += split_held_out(files, noise_dir, exclude)[0] if exclude else files
    if not noise_files:
        raise DlspError("every noise file is excluded by data.exclude", noise_dirs[0])
    return assign_noise_splits(noise_files, config.split, seed)[0]


def mixing_data(clean_dirs: Sequence[str | os.PathLike[str]], noise_dirs: Sequence[str | os.PathLike[str]],
                config: DenoiseDataConfig, seed: int, cache: str | os.PathLike[str] | None = None,
                progress: bool = True, log=None) -> DenoiseData:
    """On-the-fly mixing sources for the splits of `mixing_splits`."""
    _check_choice("narrowband", config.narrowband, NARROWBAND_POLICIES)
    _check_choice("balance", config.balance, BALANCE_MODES)
    clean_splits = _clean_splits(clean_dirs, config, seed)
    noise_splits = _noise_splits(noise_dirs, config, seed)
    snr = parse_snr_spec(config.snr)
    level = None if config.level_db is None else parse_snr_spec(config.level_db, "level")
    segment = round(config.segment_seconds * config.sample_rate)
    corpus_of = {str(Path(d)): Path(d).resolve().name for d in clean_dirs}
    noise_corpus_of = {str(Path(d)): Path(d).resolve().name for d in noise_dirs}
    sources, files = {}, {}
    for split in SPLITS:
        items = clean_splits[split]
        if not items:
            continue
        clean_pool = load_pool([item.path for item in items], config.sample_rate, cache, f"{split}-clean",
                               progress, corpora=[_corpus(item.path, corpus_of) for item in items],
                               speakers=[dataset_index._speaker_key(item) for item in items])
        clean_pool = _apply_narrowband_policy(clean_pool, config, split, log)
        noise_pool = load_pool(noise_splits[split], config.sample_rate, cache, f"{split}-noise", progress,
                               corpora=[_corpus(path, noise_corpus_of) for path in noise_splits[split]],
                               min_seconds=MIN_NOISE_SECONDS)
        if split == "train" and config.synthetic_noise_files:
            noise_pool = _with_synthetic_noise(noise_pool, config.synthetic_noise_files, config.sample_rate, seed)
        # Validation and test are heard as recorded (balanced and band-limited alike, but never augmented).
        options = dict(balance=config.balance, narrowband=config.narrowband)
        if split == "train":
            options |= dict(augment_noise=config.augment_noise, speech_speed=config.speech_speed,
                            noise_speed=config.noise_speed, noise_eq=config.noise_eq, speech_eq=config.speech_eq,
                            babble=config.babble, clipping=config.clipping, reverb=config.reverb,
                            narrow_input=config.narrow_input,
                            rirs=room_bank(config.reverb_rooms, config.sample_rate, seed, progress)
                            if config.reverb else ())
        sources[split] = MixingSource(clean_pool, noise_pool, snr, level, segment, config.sample_rate, **options)
        files[split] = {"clean": list(clean_pool.names), "noise": [str(p) for p in noise_splits[split]]}
    return DenoiseData(sources, files)


def _corpus(path: Path, corpus_of: dict[str, str]) -> str:
    for folder, name in corpus_of.items():
        if Path(path).is_relative_to(folder):
            return name
    return ""


def _apply_narrowband_policy(pool: AudioPool, config: DenoiseDataConfig, split: str, log) -> AudioPool:
    """Drop narrowband recordings under `narrowband: exclude` (saying how many); the other policies act per
    segment in `MixingSource`."""
    full_band = NARROWBAND_FRACTION * config.sample_rate / 2
    narrow = [i for i in range(len(pool)) if pool.bandwidth(i) < full_band]
    if log is not None and narrow:
        action = {"exclude": "excluded", "limit": "mixed with noise band-limited to their content",
                  "keep": "kept as they are"}[config.narrowband]
        log(f"{split}: {len(narrow)} of {len(pool)} clean recordings have no content above "
            f"{full_band / 1000:.1f} kHz (narrowband): {action}")
    if config.narrowband != "exclude" or not narrow:
        return pool
    keep = [i for i in range(len(pool)) if pool.bandwidth(i) >= full_band]
    if not keep:
        raise DlspError(f"every {split} clean recording is narrowband (no content above {full_band:.0f} Hz) and "
                        "data.narrowband is exclude; use limit, or a wideband corpus")
    return pool.subset(keep)


def room_bank(count: int, sample_rate: int, seed: int, progress: bool = True) -> list[np.ndarray]:
    """`count` simulated room impulse responses, the same for the same seed."""
    from dlsp.progress import progress_bar

    if count < 1:
        raise DlspError(f"data.reverb_rooms must be at least 1, got {count}")
    return [simulate_rir(_rng(seed, 3000, k), sample_rate)
            for k in progress_bar(range(count), desc="simulating rooms", unit="room", disable=not progress,
                                  leave=False)]


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
              progress: bool = True, corpora: Sequence[str] = (), speakers: Sequence[str] = (),
              min_seconds: float = 0.0) -> AudioPool:
    """Decode and resample `paths`, through the cache when one is given, measuring each file's effective
    bandwidth. Silent files and files shorter than `min_seconds` are skipped; none left is an error."""
    key = _cache_key(paths, sample_rate, min_seconds)
    if cache is not None:
        cached = _read_cache(Path(cache), name, key)
        if cached is not None:
            return cached
    from dlsp.progress import progress_bar

    pool = AudioPool([], [], [], [], [])
    files = progress_bar(paths, desc=f"loading {name}", unit="file", disable=not progress, leave=False)
    for i, path in enumerate(files):
        signal, _ = load_audio(path, sample_rate=sample_rate, allow_silent=True)
        if is_silent(signal) or len(signal) < min_seconds * sample_rate:
            continue
        pool.names.append(str(path))
        pool.audio.append(signal)
        pool.corpora.append(corpora[i] if corpora else "")
        pool.speakers.append(speakers[i] if speakers else str(path))
        pool.bandwidths.append(effective_bandwidth(signal, sample_rate))
    if not pool.audio:
        reason = f"all silent or shorter than {min_seconds:g} s" if min_seconds else "all silent"
        raise DlspError(f"no usable audio for {name} ({len(paths)} files, {reason})",
                        Path(paths[0]).parent if paths else None)
    if cache is not None:
        _write_cache(Path(cache), name, key, pool)
    return pool


def _cache_key(paths: Sequence[Path], sample_rate: int, min_seconds: float = 0.0) -> str:
    digest = hashlib.sha256(f"{sample_rate}|{min_seconds}|v3".encode())  # v3: pools carry corpus, speaker, bandwidth
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
    return AudioPool(index["names"], audio, index.get("corpora", []), index.get("speakers", []),
                     index.get("bandwidths", []))


def _write_cache(cache: Path, name: str, key: str, pool: AudioPool) -> None:
    data_path, index_path = _cache_files(cache, name)
    ensure_dir(data_path.parent)
    offsets = np.cumsum([0, *(len(a) for a in pool.audio)]).tolist()
    with atomic_path(data_path) as tmp:
        np.save(tmp, np.concatenate(pool.audio).astype(np.float32), allow_pickle=False)
    write_json(index_path, {"key": key, "names": pool.names, "offsets": offsets, "corpora": pool.corpora,
                            "speakers": pool.speakers, "bandwidths": pool.bandwidths})

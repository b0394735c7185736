"""Speaker data: speaker-disjoint splits, clips decoded in memory, and the training batches of each objective.

Speakers are named `<dataset folder>/<speaker>` so two datasets cannot merge two people; the dataset folder is
the speaker's corpus. Splits are by speaker: speakers named in `val_speakers`/`test_speakers` go there (a name
is `speaker` or `folder/speaker`; `@NAME` stands for the speaker set NAME of `dlsp.data.holdout.SPEAKER_SETS`,
e.g. `@speechocean762`, and a set none of whose speakers is in the data is skipped, since its corpus was not
given); a dataset's own speaker-consistent split is kept (Arabic Speech Commands' train/validation speakers);
the remaining speakers of each corpus are split with `val_fraction`, corpus by corpus (FSDD's official split is
by take, so its speakers count as unsplit). Test speakers are never loaded for training: they are for
`dlsp speaker eval`.

Clips are trimmed of leading and trailing silence (as embedding does at inference), optionally copied at other
speeds (speed perturbation: each speed makes a new training speaker, since a voice played 10% faster is
another voice), and cut into segments: `segment_seconds` long, or, with `crop_seconds: [low, high]`, of a
length drawn uniformly from that range for each batch (all crops of a batch share it, so it stacks), so the
model meets short and long utterances. Shorter clips are repeated to fill a segment.

Which speakers a batch draws (`balance`): "speaker" draws every training speaker equally often, pooled over the
corpora; "corpus" draws a corpus uniformly, then a speaker of it uniformly; "sqrt" draws a corpus with
probability proportional to the square root of its training-speaker count, then a speaker of it uniformly.
"sqrt" is the compromise the wideband recipe uses: pooled, the 109 speechocean762 speakers would take 84% of the
segments and FSDD's 3 speakers 2%; uniform over corpora would give each FSDD voice 36 times the segments of a
speechocean762 voice (a third of every batch from 3 people, an invitation to memorise them); sqrt gives
speechocean762, Arabic and FSDD about 64, 26 and 10% (6 times the segments per FSDD voice).

Every batch draws from its own generator keyed by (seed, epoch, index), so a resumed run sees the data an
uninterrupted one would have.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlsp.audio.augment import random_eq
from dlsp.audio.io import resample
from dlsp.data.index import AudioItem, index_dataset, speaker_disjoint_split
from dlsp.errors import DlspError
from dlsp.speaker.audio import load_speech, trim_silence

SPLITS = ("train", "val", "test")
BALANCES = ("speaker", "corpus", "sqrt")
TELEPHONE_HZ = 4000.0
EQ_PROB = 0.5


@dataclass(frozen=True)
class SpeakerDataConfig:
    """Which speakers train and validate, and how training segments are made."""

    sample_rate: int = 16000
    segment_seconds: float = 1.0
    # [low, high]: each batch's crops last a length drawn uniformly in this range (seconds); null: segment_seconds.
    crop_seconds: list[float] | None = None
    balance: str = "speaker"  # "speaker", "corpus" or "sqrt": how batches draw speakers (module docstring)
    val_fraction: float = 0.2
    val_speakers: list[str] = field(default_factory=list)
    test_speakers: list[str] = field(default_factory=list)
    trim_db: float = 40.0
    speed_perturb: list[float] = field(default_factory=lambda: [1.0])
    band_limit_prob: float = 0.0
    # Additive noise: with this probability a segment gets one of dlsp's synthetic noises (every kind but
    # babble, whose synthetic voices would be other speakers) at an SNR drawn from `noise_snr` dB.
    noise_prob: float = 0.0
    noise_snr: list[float] = field(default_factory=lambda: [5.0, 20.0])
    # Channel augmentation: with probability 0.5 a segment passes 3 random peaking bands of up to +-`eq_db` dB
    # (0: off), so a speaker's microphone and room are not what the model learns to recognise.
    eq_db: float = 0.0
    segments_per_epoch: int = 4096
    max_val_clips_per_speaker: int = 40


@dataclass
class SpeakerClips:
    """Decoded clips with a speaker index each; `speakers[i]` names index i."""

    audio: list[np.ndarray]
    labels: np.ndarray
    speakers: list[str]
    paths: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.audio)

    def by_speaker(self) -> list[np.ndarray]:
        """Clip indices of each speaker."""
        return [np.flatnonzero(self.labels == s) for s in range(len(self.speakers))]


def speaker_key(root: str | os.PathLike[str], item: AudioItem) -> str:
    """`<dataset folder>/<speaker>`; the label stands in for the speaker in a `<speaker>/<files>` layout."""
    speaker = item.speaker or item.label
    if speaker is None:
        raise DlspError("file has no speaker (use a layout that names speakers: --format speakers, fsdd, "
                        "speech-commands, librispeech, or a manifest with a speaker column)", item.path)
    return f"{Path(root).resolve().name}/{speaker}"


def index_speakers(roots: Sequence[str | os.PathLike[str]], format: str = "auto"
                   ) -> list[tuple[str, AudioItem]]:
    """(speaker key, item) for every file of the datasets, checking speaker labels are present."""
    if not roots:
        raise DlspError("no data: give --data DIR")
    found = []
    for root in roots:
        items = index_dataset(root, format)
        found += [(speaker_key(root, item), item) for item in items]
    return found


def corpus_of(speaker: str) -> str:
    """The corpus (dataset folder) of a speaker key `<folder>/<speaker>[@speed]`."""
    return speaker.split("/", 1)[0]


def _present(name: str, keys: set[str] | dict) -> bool:
    return name in keys or any(k.endswith("/" + name) for k in keys)


def resolve_speakers(names: Sequence[str], keys: set[str] | dict) -> list[str]:
    """Speaker names with every `@NAME` replaced by that set's speakers present in `keys` (a set none of
    whose speakers is present is dropped; one partly present is an error, as is an unknown plain name)."""
    from dlsp.data.holdout import SPEAKER_SETS

    out: list[str] = []
    for name in names:
        if not name.startswith("@"):
            out.append(name)
            continue
        if name[1:] not in SPEAKER_SETS:
            raise DlspError(f"unknown speaker set {name!r} (known: "
                            f"{', '.join('@' + n for n in sorted(SPEAKER_SETS))})")
        members = SPEAKER_SETS[name[1:]]
        found = [m for m in members if _present(m, keys)]
        if found and len(found) < len(members):
            missing = sorted(set(members) - set(found))
            raise DlspError(f"speaker set {name} is only partly in the data: missing {', '.join(missing)}")
        out += found
    return out


def assign_splits(indexed: Sequence[tuple[str, AudioItem]], config: SpeakerDataConfig, seed: int
                  ) -> dict[str, str]:
    """Split of every speaker key (rules in the module docstring); speaker-disjoint by construction."""
    own: dict[str, set] = {}
    for key, item in indexed:
        own.setdefault(key, set()).add(item.split)
    named = {**{s: "val" for s in resolve_speakers(config.val_speakers, own)},
             **{s: "test" for s in resolve_speakers(config.test_speakers, own)}}
    unknown = [s for s in named if not _present(s, own)]
    if unknown:
        raise DlspError(f"speakers named in the config are not in the data: {', '.join(sorted(unknown))} "
                        f"(names look like {next(iter(sorted(own)))})")
    result: dict[str, str] = {}
    free = []
    for key, splits in sorted(own.items()):
        chosen = named.get(key) or named.get(key.split("/", 1)[1])
        if chosen is None and len(splits) == 1 and next(iter(splits)) in SPLITS:
            chosen = next(iter(splits))
        if chosen is None:
            free.append(key)
        else:
            result[key] = chosen
    for corpus in sorted({corpus_of(key) for key in free}):  # each corpus split on its own: val spans them
        keys = [key for key in free if corpus_of(key) == corpus]
        if config.val_fraction > 0 and len(keys) > 1:
            stand_ins = [AudioItem(Path(key), None, key, 0.0, 0) for key in keys]
            split = speaker_disjoint_split(stand_ins, (1 - config.val_fraction, config.val_fraction, 0.0), seed,
                                           respect_existing=False)
            result.update({item.speaker: name for name, group in split.items() for item in group})
        else:
            result.update(dict.fromkeys(keys, "train"))
    return result


def load_clips(indexed: Sequence[tuple[str, AudioItem]], sample_rate: int, trim_db: float,
               progress: bool = True, desc: str = "loading") -> SpeakerClips:
    """Decode, resample and trim every file; files that are silent or unreadable are skipped."""
    from dlsp.progress import progress_bar

    speakers = sorted({key for key, _ in indexed})
    index = {key: i for i, key in enumerate(speakers)}
    audio, labels, paths = [], [], []
    for key, item in progress_bar(indexed, desc=desc, unit="file", disable=not progress, leave=False):
        try:
            clip = load_speech(item.path, sample_rate, min_seconds=0.0)
        except DlspError:
            continue
        audio.append(trim_silence(clip, sample_rate, trim_db))
        labels.append(index[key])
        paths.append(str(item.path))
    return SpeakerClips(audio, np.asarray(labels, dtype=np.int64), speakers, paths)


def perturb_speed(clips: SpeakerClips, speeds: Sequence[float], sample_rate: int) -> SpeakerClips:
    """Add copies of every clip played at each speed != 1 (resampling changes pitch and formants together),
    each speed a new speaker named `<speaker>@<speed>`."""
    speeds = [float(s) for s in speeds]
    if any(not 0.5 <= s <= 2.0 for s in speeds):
        raise DlspError(f"speed_perturb factors must lie in [0.5, 2], got {speeds}")
    audio, labels, names = list(clips.audio), list(clips.labels), list(clips.speakers)
    paths = list(clips.paths)
    for speed in (s for s in speeds if s != 1.0):
        offset = len(names)
        names += [f"{name}@{speed:g}" for name in clips.speakers]
        # Played `speed` times faster: resample to a rate `speed` times lower, keep the nominal rate.
        audio += [resample(clip, sample_rate, round(sample_rate / speed)) for clip in clips.audio]
        labels += [label + offset for label in clips.labels]
        paths += clips.paths
    return SpeakerClips(audio, np.asarray(labels, dtype=np.int64), names, paths)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def segment(clip: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random `length`-sample crop; a shorter clip is repeated (from a random phase) to fill it."""
    if clip.size >= length:
        start = int(rng.integers(0, clip.size - length + 1))
        return clip[start:start + length]
    reps = -(-length // clip.size) + 1
    start = int(rng.integers(0, clip.size))
    return np.tile(clip, reps)[start:start + length]


def band_limit(x: np.ndarray, sample_rate: int, cutoff: float = TELEPHONE_HZ) -> np.ndarray:
    """Zero the spectrum above `cutoff` (as 8 kHz recordings are): teaches the model narrow-band speech."""
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum[..., int(cutoff / sample_rate * x.shape[-1]):] = 0
    return np.fft.irfft(spectrum, n=x.shape[-1], axis=-1).astype(np.float32)


NOISE_BANK_SECONDS = 6.0
NOISE_BANK_PER_KIND = 2


def noise_bank(sample_rate: int, seed: int = 0) -> list[np.ndarray]:
    """Synthetic noise recordings for training augmentation (all kinds but babble, a few of each)."""
    from dlsp.audio.noises import NOISE_KINDS, synth_noise

    kinds = [kind for kind in NOISE_KINDS if kind != "babble"]
    return [synth_noise(kind, NOISE_BANK_SECONDS, sample_rate, _rng(seed, 11, k, i))
            for k, kind in enumerate(kinds) for i in range(NOISE_BANK_PER_KIND)]


def check_augmentation(config: SpeakerDataConfig) -> None:
    """Refuse impossible augmentation and sampling settings in one line naming the setting."""
    if config.balance not in BALANCES:
        raise DlspError(f"data.balance must be one of {', '.join(BALANCES)}, got {config.balance!r}")
    crop = config.crop_seconds
    if crop is not None and (len(crop) != 2 or not 0 < crop[0] <= crop[1] <= 60):
        raise DlspError(f"data.crop_seconds is [shortest, longest] seconds with 0 < shortest <= longest <= 60, "
                        f"got {crop}")
    for name in ("band_limit_prob", "noise_prob"):
        if not 0 <= getattr(config, name) <= 1:
            raise DlspError(f"data.{name} is a probability in [0, 1], got {getattr(config, name)}")
    if not 0 <= config.eq_db <= 40:
        raise DlspError(f"data.eq_db is a gain in dB in [0, 40], got {config.eq_db}")
    if len(config.noise_snr) != 2 or config.noise_snr[0] > config.noise_snr[1]:
        raise DlspError(f"data.noise_snr is [lowest, highest] dB, got {config.noise_snr}")


def speaker_weights(speakers: Sequence[str], present: np.ndarray, balance: str) -> np.ndarray | None:
    """Probability of drawing each present speaker under `balance` (module docstring); None: uniform."""
    if balance == "speaker":
        return None
    corpora = [corpus_of(speakers[int(s)]) for s in present]
    counts = Counter(corpora)
    share = {c: 1.0 if balance == "corpus" else math.sqrt(n) for c, n in counts.items()}
    total = sum(share.values())
    return np.asarray([share[c] / total / counts[c] for c in corpora])


class SegmentSampler:
    """Training segments of `clips` with augmentation (band limiting, random EQ, additive noise)."""

    def __init__(self, clips: SpeakerClips, config: SpeakerDataConfig, seed: int = 0) -> None:
        if len(clips.speakers) < 2:
            raise DlspError(f"training needs at least 2 speakers, got {len(clips.speakers)}")
        check_augmentation(config)
        self.clips, self.config = clips, config
        seconds = config.segment_seconds if config.crop_seconds is None else config.crop_seconds[1]
        self.length = round(seconds * config.sample_rate)  # the longest crop (for fitting the normaliser)
        self.groups = [g for g in clips.by_speaker()]
        self.present = np.asarray([s for s, g in enumerate(self.groups) if g.size], dtype=np.int64)
        self.weights = speaker_weights(clips.speakers, self.present, config.balance)
        self.noises = noise_bank(config.sample_rate, seed) if config.noise_prob > 0 else []

    def batch_length(self, rng: np.random.Generator) -> int:
        """Crop length of the next batch in samples (drawn only with `crop_seconds`, so fixed-length runs keep
        their random streams)."""
        if self.config.crop_seconds is None:
            return self.length
        low, high = self.config.crop_seconds
        return round(float(rng.uniform(low, high)) * self.config.sample_rate)

    def draw(self, rng: np.random.Generator, n: int, replace: bool = True) -> np.ndarray:
        """`n` speaker indices drawn under the configured balance."""
        return rng.choice(self.present, n, replace=replace, p=self.weights)

    def cut(self, clip_index: int, rng: np.random.Generator, length: int | None = None) -> np.ndarray:
        x = segment(self.clips.audio[clip_index], self.length if length is None else length, rng)
        if self.config.band_limit_prob and rng.random() < self.config.band_limit_prob:
            x = band_limit(x, self.config.sample_rate)
        if self.config.eq_db and rng.random() < EQ_PROB:
            x = random_eq(x, rng, self.config.sample_rate, self.config.eq_db)
        if self.noises and rng.random() < self.config.noise_prob:
            x = self.add_noise(x, rng)
        return x

    def add_noise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from dlsp.audio.mixing import fit_noise, mix_at_snr

        if not np.any(x):
            return x  # a silent segment has no level to mix against
        noise = fit_noise(self.noises[int(rng.integers(len(self.noises)))], x.size, rng)
        snr = float(rng.uniform(*self.config.noise_snr))
        return mix_at_snr(x, noise, snr, rng).noisy.astype(np.float32)

    def pick(self, speaker: int, rng: np.random.Generator) -> int:
        return int(rng.choice(self.groups[speaker]))

    def class_batches(self, seed: int, epoch: int, count: int, batch_size: int
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(segments (B, S), speaker (B,))`: speakers drawn under the balance, then one of their clips."""
        for start in range(0, count, batch_size):
            rng = _rng(seed, epoch, start)
            speakers = self.draw(rng, min(batch_size, count - start))
            length = self.batch_length(rng)
            segments = np.stack([self.cut(self.pick(int(s), rng), rng, length) for s in speakers])
            yield segments, speakers

    def grouped_batches(self, seed: int, epoch: int, count: int, n_speakers: int, per_speaker: int
                        ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(segments (N * M, S), speaker (N * M,))`: `n_speakers` different speakers, `per_speaker` segments of
        each in a row (different clips while the speaker has enough), about `count` segments in all."""
        n_speakers = min(n_speakers, self.present.size)
        if n_speakers < 2 or per_speaker < 2:
            raise DlspError(f"grouped batches need 2+ speakers of 2+ segments, got {n_speakers} x {per_speaker} "
                            "(raise train.batch_size or lower train.per_speaker)")
        size = n_speakers * per_speaker
        for start in range(0, count - size + 1, size):
            rng = _rng(seed, epoch, start)
            speakers = self.draw(rng, n_speakers, replace=False)
            length = self.batch_length(rng)
            segments, labels = [], []
            for s in speakers:
                group = self.groups[int(s)]
                picks = rng.choice(group, per_speaker, replace=group.size < per_speaker)
                segments += [self.cut(int(i), rng, length) for i in picks]
                labels += [int(s)] * per_speaker
            yield np.stack(segments), np.asarray(labels, dtype=np.int64)

    def pair_batches(self, seed: int, epoch: int, count: int, batch_size: int
                     ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """`(first (B, S), second (B, S), same (B,))`: half same-speaker pairs (two different clips when the
        speaker has them), half different-speaker pairs. `count` counts pairs."""
        for start in range(0, count, batch_size):
            rng = _rng(seed, epoch, start)
            n = min(batch_size, count - start)
            length = self.batch_length(rng)
            same = np.arange(n) % 2 == 0
            first, second = [], []
            for is_same in same:
                a_spk, b_spk = self.draw(rng, 2, replace=False)
                a = self.pick(int(a_spk), rng)
                if is_same:
                    group = self.groups[int(a_spk)]
                    others = group[group != a]
                    b = int(rng.choice(others)) if others.size else a
                else:
                    b = self.pick(int(b_spk), rng)
                first.append(self.cut(a, rng, length))
                second.append(self.cut(b, rng, length))
            yield np.stack(first), np.stack(second), same.astype(np.float32)


def limit_per_speaker(clips: SpeakerClips, limit: int, seed: int) -> SpeakerClips:
    """At most `limit` clips per speaker (a fixed random choice), to bound validation time."""
    rng = _rng(seed, 7)
    keep = np.sort(np.concatenate([rng.permutation(g)[:limit] for g in clips.by_speaker() if g.size]))
    return SpeakerClips([clips.audio[i] for i in keep], clips.labels[keep], clips.speakers,
                        [clips.paths[i] for i in keep] if clips.paths else [])

"""A noisy-speech corpus in the manner of MS-SNSD: clean speech mixed with noise at random SNRs.

`make_noisy_corpus` writes `OUT/clean/NAME.wav`, `OUT/noise/NAME.wav` and `OUT/noisy/NAME.wav` per mixture
(`noisy == clean + noise` up to 16-bit rounding), a `README.md`, and last `OUT/manifest.csv`. The manifest is
written last and atomically, so a killed run never leaves a manifest pointing at missing or half-made files.

Speakers are disjoint across train/val/test (the clean dataset's own splits are ignored: FSDD's, for one, is
by take, not by speaker), and so are the noise files when there are at least 3, so the test split holds
speakers and noise recordings the model never heard. Every mixture draws from its own generator, derived from
the seed with `numpy.random.SeedSequence`, so mixture k is the same whatever happened before it.

Unusable input files (unreadable, empty, silent) are skipped and reported one by one through `on_skip`; headers
are checked before anything is written, and a run that fails (no usable clean or noise file left) removes
what it created, so a failure leaves no half-made corpus.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from dlsp.audio.io import is_silent, list_audio_files, load_audio, save_audio
from dlsp.audio.mixing import SnrSpec, crop_or_pad, mix_at_snr, parse_snr_spec
from dlsp.data import index as dataset_index
from dlsp.data.index import AudioItem
from dlsp.data.manifests import nonempty_info
from dlsp.errors import DlspError
from dlsp.fileio import TEMP_PREFIX, ensure_dir, write_text

SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("name", "clean", "noise", "noisy", "snr_db", "sample_rate", "split", "speaker",
                    "source_clean", "source_noise")
AUDIO_DIRS = ("clean", "noise", "noisy")
DEFAULT_COUNT = 100
_OUR_AUDIO = re.compile(r"^(train|val|test)_\d+\.wav$")
# Streams of the SeedSequence spawn keys, so draws made for different purposes never coincide.
_MIXTURE, _CLEAN_ORDER, _NOISE_ORDER, _NOISE_SPLIT = 0, 1, 2, 3
# Decoded noise kept in memory across mixtures (float32 samples, ~256 MB), so long noise files are read once.
_NOISE_CACHE_SAMPLES = 64_000_000


def make_noisy_corpus(
    clean_dir: str | os.PathLike[str],
    noise_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    snr: str | SnrSpec = "-5:20",
    count: int | None = None,
    hours: float | None = None,
    sample_rate: int = 16000,
    seed: int = 0,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    clip_seconds: float | None = None,
    clean_format: str = "auto",
    progress: bool = True,
    level_db: str | SnrSpec | None = None,
    on_skip: Callable[[Path, str, str], None] | None = None,
) -> Path:
    """Mix the speech under `clean_dir` with the noise under `noise_dir` into a corpus under `out_dir`.

    Args:
        snr: `LO:HI` (uniform) or `V,V,...` (choose one) in dB; each mixture draws its own SNR.
        count: number of mixtures, shared among the splits by `splits`; `DEFAULT_COUNT` when neither it nor
            `hours` is given.
        hours: instead of `count`, make mixtures until each split holds its share of this much audio.
        sample_rate: clean and noise are resampled to this rate.
        seed: everything (speaker and noise splits, file order, SNRs, crops) follows from it.
        splits: train/val/test fractions; speakers (and noise files, if there are 3 or more) are disjoint.
        clip_seconds: crop (random offset) or zero-pad (random position) every clean clip to this length.
        clean_format: layout of `clean_dir` for `dlsp.data.index.index_dataset`.
        progress: show a progress bar on stderr.
        level_db: optionally set each mixture's RMS level, drawn from `LO:HI` or `V,V,...` dBFS (natural
            loudness variation); `None` keeps the recordings' own levels.
        on_skip: called as `on_skip(path, kind, problem)` (kind "clean" or "noise") for every input file that
            is skipped as unusable; by default each one is a `UserWarning`.

    Returns:
        The path of the manifest.

    Raises:
        DlspError: for bad settings and folders, or when no usable clean or noise file remains: before
            anything is written, or else after removing what this run wrote.
    """
    snr_spec = snr if isinstance(snr, SnrSpec) else parse_snr_spec(snr)
    level_spec = level_db if level_db is None or isinstance(level_db, SnrSpec) else parse_snr_spec(level_db,
                                                                                                  "level")
    fractions = _check_fractions(splits)
    _check_settings(count, hours, sample_rate, clip_seconds, clean_format, fractions)
    clean_dir, noise_dir, out_dir = Path(clean_dir), Path(noise_dir), Path(out_dir)
    skip = on_skip or _warn_skipped
    clean_files = list_audio_files(clean_dir)
    if not clean_files:
        raise DlspError("clean folder has no audio files", clean_dir)
    noise_files = list_audio_files(noise_dir)
    if not noise_files:
        raise DlspError("noise folder has no audio files", noise_dir)
    _check_output_dir(out_dir, (clean_dir, noise_dir))
    # Headers first: unreadable or empty files are skipped, and nothing is created unless both kinds remain.
    bad_clean = _unreadable(clean_files, "clean", skip)
    if len(bad_clean) == len(clean_files):
        raise DlspError(f"none of the {len(clean_files)} clean audio files is usable", clean_dir)
    bad_noise = _unreadable(noise_files, "noise", skip)
    noise_files = [path for path in noise_files if path not in bad_noise]
    if not noise_files:
        raise DlspError(f"none of the {len(bad_noise)} noise audio files is usable", noise_dir)

    items = _index_clean(clean_dir, clean_layout(clean_dir, clean_format), bad_clean)
    clean_splits = assign_clean_splits(items, fractions, seed, clean_dir)
    noise_splits, noise_disjoint = assign_noise_splits(noise_files, fractions, seed)
    clip_samples = None if clip_seconds is None else max(1, round(clip_seconds * sample_rate))
    mixer = _Mixer(clean_splits, noise_splits, snr_spec, level_spec, sample_rate, clip_samples, seed, skip)
    if hours is not None:
        counts = {name: mixer.count_for_seconds(name, hours * 3600 * f) if f > 0 else 0
                  for name, f in zip(SPLITS, fractions, strict=True)}
    else:
        counts = split_counts(DEFAULT_COUNT if count is None else count, fractions)

    created = not out_dir.exists()
    _clear_previous_output(out_dir)
    for sub in AUDIO_DIRS:
        ensure_dir(out_dir / sub)
    from dlsp.progress import progress_bar

    rows, seconds = [], []
    jobs = [(name, k) for name in SPLITS for k in range(counts[name])]
    try:
        for name, k in progress_bar(jobs, desc="mixing", unit="mix", file=sys.stderr, disable=not progress):
            row, duration = mixer.make(name, k, out_dir)
            rows.append(row)
            seconds.append(duration)
    except DlspError:
        # Every usable-looking file turned out silent: take back what this run wrote.
        _remove_output(out_dir, created)
        raise
    summary = summarize(rows, seconds)
    write_text(out_dir / "README.md", _readme(summary, snr_spec, level_spec, noise_disjoint, seed, clean_dir,
                                              noise_dir))
    return write_text(out_dir / MANIFEST_NAME, _manifest_text(rows))


def parse_split_fractions(text: str) -> tuple[float, float, float]:
    """Parse `TRAIN,VAL,TEST` fractions such as `0.8,0.1,0.1` (normalised to sum 1)."""
    parts = str(text).split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3:
        raise DlspError(f"bad split {text!r}: give three fractions TRAIN,VAL,TEST such as 0.8,0.1,0.1")
    return _check_fractions(values)


def split_counts(total: int, fractions: Sequence[float]) -> dict[str, int]:
    """Share `total` among the splits in proportion, at least one per non-zero fraction."""
    active = [i for i, f in enumerate(fractions) if f > 0]
    if total < len(active):
        raise DlspError(f"count {total} is smaller than the number of splits ({len(active)}): every split "
                        "needs at least one mixture")
    ideal = [total * f for f in fractions]
    counts = [max(1, math.floor(ideal[i])) if i in active else 0 for i in range(len(fractions))]
    while sum(counts) > total:
        i = max((i for i in active if counts[i] > 1), key=lambda i: counts[i] - ideal[i])
        counts[i] -= 1
    while sum(counts) < total:
        counts[max(active, key=lambda i: ideal[i] - counts[i])] += 1
    return dict(zip(SPLITS, counts, strict=True))


def clean_layout(clean_dir: str | os.PathLike[str], clean_format: str = "auto") -> str:
    """The index format for a clean-speech folder: `auto` as `detect_format` decides, except that plain
    subfolders are read as one folder per speaker (VCTK, `dlsp data synth`), since speakers must be known to
    keep them out of two splits."""
    if clean_format != "auto":
        return clean_format
    detected = dataset_index.detect_format(clean_dir)
    root = Path(clean_dir)
    if detected == "folders" and all(len(p.relative_to(root).parts) > 1 for p in list_audio_files(root)):
        return "speakers"
    return detected


def assign_clean_splits(items: list[AudioItem], fractions: Sequence[float], seed: int,
                        clean_dir: str | os.PathLike[str] | None = None) -> dict[str, list[AudioItem]]:
    """Speaker-disjoint train/val/test lists sorted by path; every split with a non-zero fraction gets some.

    The items' own splits are ignored (FSDD's official split is by take, so it shares speakers).
    """
    try:
        groups = dataset_index.speaker_disjoint_split(items, fractions=tuple(fractions), seed=seed,
                                                      respect_existing=False)
    except DlspError as exc:
        raise DlspError(exc.problem, exc.path or clean_dir) from None
    out = {name: sorted(groups.get(name, []), key=lambda item: str(item.path)) for name in SPLITS}
    for name, fraction in zip(SPLITS, fractions, strict=True):
        if fraction > 0 and not out[name]:
            raise DlspError(f"the {name} split got no speakers; add speakers or set its --split to 0",
                            clean_dir)
    return out


def noise_recording(path: Path) -> tuple[str, str]:
    """`(type, recording)` of a noise file, read from its name.

    The type is the stem without trailing `_<number>` parts (`aircon_1_3` -> `aircon`, `pink_01` -> `pink`).
    A name with two numeric suffixes is a slice of a recording (`<type>_<recording>_<slice>`, as in
    household noise sets), and all slices of one recording must stay in one split or the test noise leaks.
    """
    parts = path.stem.split("_")
    numeric = 0
    while numeric < len(parts) - 1 and parts[len(parts) - 1 - numeric].isdigit():
        numeric += 1
    kind = "_".join(parts[: len(parts) - numeric])
    recording = "_".join(parts[:-1]) if numeric >= 2 else path.stem
    return kind, recording


def assign_noise_splits(
    noise_files: list[Path], fractions: Sequence[float], seed: int
) -> tuple[dict[str, list[Path]], bool]:
    """Give each split its own noise recordings, stratified by noise type, or share all files when too few.

    Each type with at least one recording per split deals its (shuffled) recordings among the splits in
    proportion, at least one each, so test noise is unseen but of kinds seen in training; the recordings of
    rarer types go one by one to a split without noise yet, else to the one furthest below its share. Slices
    of one recording never straddle splits. With fewer than 3 recordings, or a split left without noise, every
    split shares all files.

    Returns:
        `({split: files}, disjoint)`.
    """
    active = [name for name, f in zip(SPLITS, fractions, strict=True) if f > 0]
    recordings: dict[str, list[Path]] = {}
    for path in sorted(noise_files):
        recordings.setdefault(noise_recording(path)[1], []).append(path)
    if len(recordings) < max(3, len(active)):
        return {name: sorted(noise_files) if name in active else [] for name in SPLITS}, False
    by_kind: dict[str, list[str]] = {}
    for recording, files in recordings.items():
        by_kind.setdefault(noise_recording(files[0])[0], []).append(recording)
    rng = _rng(seed, _NOISE_SPLIT)
    chosen: dict[str, list[str]] = {name: [] for name in SPLITS}
    rare: list[str] = []
    for kind in sorted(by_kind):
        names = [by_kind[kind][i] for i in rng.permutation(len(by_kind[kind]))]
        if len(names) < len(active):
            rare += names
            continue
        start = 0
        for name, count in split_counts(len(names), fractions).items():
            chosen[name] += names[start:start + count]
            start += count
    share = dict(zip(SPLITS, fractions, strict=True))
    total = len(recordings)
    for recording in [rare[i] for i in rng.permutation(len(rare))]:
        # A split still without noise comes first; then the one furthest below its share.
        split = max(active, key=lambda n: (not chosen[n], share[n] * total - len(chosen[n])))
        chosen[split].append(recording)
    if any(not chosen[name] for name in active):
        return {name: sorted(noise_files) if name in active else [] for name in SPLITS}, False
    return {name: sorted(f for r in chosen[name] for f in recordings[r]) for name in SPLITS}, True


def corpus_summary(manifest_path: str | os.PathLike[str]) -> dict:
    """`summarize` for a written corpus, from its manifest and the noisy files' headers."""
    with open(manifest_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    root = Path(manifest_path).parent
    return summarize(rows, [sf.info(str(root / row["noisy"])).duration for row in rows])


def summarize(rows: list[dict[str, str]], seconds: list[float]) -> dict:
    """Per-split counts, hours, speakers and noise files; the SNR range; whether noise files are disjoint."""
    per_split = {}
    for name in SPLITS:
        chosen = [(row, s) for row, s in zip(rows, seconds, strict=True) if row["split"] == name]
        per_split[name] = {
            "mixtures": len(chosen),
            "hours": sum(s for _, s in chosen) / 3600,
            "speakers": len({row["speaker"] or row["source_clean"] for row, _ in chosen}),
            "noise_files": len({row["source_noise"] for row, _ in chosen}),
        }
    noise_sets = [{row["source_noise"] for row in rows if row["split"] == name} for name in SPLITS]
    snrs = [float(row["snr_db"]) for row in rows]
    return {
        "mixtures": len(rows),
        "hours": sum(seconds) / 3600,
        "sample_rate": int(rows[0]["sample_rate"]) if rows else None,
        "splits": per_split,
        "snr_min": min(snrs, default=math.nan),
        "snr_max": max(snrs, default=math.nan),
        "noise_disjoint": all(not (a & b) for i, a in enumerate(noise_sets) for b in noise_sets[i + 1:]),
    }


class _Mixer:
    """Makes mixture k of a split from its own generator; skips (with a warning) files that cannot be used."""

    def __init__(self, clean: dict[str, list[AudioItem]], noise: dict[str, list[Path]], snr: SnrSpec,
                 level: SnrSpec | None, sample_rate: int, clip_samples: int | None, seed: int,
                 on_skip: Callable[[Path, str, str], None] | None = None) -> None:
        self.clean, self.noise, self.snr, self.level = clean, noise, snr, level
        self.sample_rate, self.clip_samples, self.seed = sample_rate, clip_samples, seed
        self.on_skip = on_skip or _warn_skipped
        self.bad: set[Path] = set()
        self._orders: dict[tuple[int, str, int], np.ndarray] = {}
        self._noise_cache: OrderedDict[Path, np.ndarray] = OrderedDict()

    def make(self, split: str, k: int, out_dir: Path) -> tuple[dict[str, str], float]:
        rng = _rng(self.seed, _MIXTURE, SPLITS.index(split), k)
        snr_db = self.snr.sample(rng)
        level_db = self.level.sample(rng) if self.level else None
        item, clean = self._clean(split, k, rng)
        for attempt in range(len(self.noise[split])):
            noise_path, noise = self._noise(split, k + attempt)
            try:
                result = mix_at_snr(clean, noise, snr_db, rng, level_db=level_db)
                break
            except DlspError:  # a silent stretch of the noise: take the next noise file
                continue
        else:
            raise DlspError(f"no noise file of the {split} split gives a non-silent crop", noise_path.parent)
        name = f"{split}_{k:05d}"
        for sub, audio in zip(AUDIO_DIRS, (result.clean, result.noise, result.noisy), strict=True):
            # mix_at_snr's peak guard keeps every sample under full scale, so "error" can never fire.
            save_audio(out_dir / sub / f"{name}.wav", audio, self.sample_rate, "PCM_16", on_clip="error")
        row = {"name": name, **{sub: f"{sub}/{name}.wav" for sub in AUDIO_DIRS}, "snr_db": f"{snr_db:.4f}",
               "sample_rate": str(self.sample_rate), "split": split, "speaker": item.speaker or "",
               "source_clean": os.path.abspath(item.path), "source_noise": os.path.abspath(noise_path)}
        return row, len(result.noisy) / self.sample_rate

    def count_for_seconds(self, split: str, seconds: float) -> int:
        """Mixtures needed to reach `seconds` of audio, walking the split's clean files in mixing order."""
        items, total, k = self.clean[split], 0.0, 0
        while total < seconds or k == 0:
            clip = self.clip_samples / self.sample_rate if self.clip_samples else None
            total += clip or items[self._position(_CLEAN_ORDER, split, k, len(items))].duration
            k += 1
        return k

    def _clean(self, split: str, k: int, rng: np.random.Generator) -> tuple[AudioItem, np.ndarray]:
        items = self.clean[split]
        for j in range(k, k + len(items)):
            item = items[self._position(_CLEAN_ORDER, split, j, len(items))]
            audio = self._load(Path(item.path), "clean")
            if audio is None:
                continue
            return item, crop_or_pad(audio, self.clip_samples, rng) if self.clip_samples else audio
        raise DlspError(f"no usable clean file in the {split} split (all {len(items)} were skipped)")

    def _noise(self, split: str, j: int) -> tuple[Path, np.ndarray]:
        files = self.noise[split]
        for i in range(j, j + len(files)):
            path = files[self._position(_NOISE_ORDER, split, i, len(files))]
            if path in self._noise_cache:
                self._noise_cache.move_to_end(path)
                return path, self._noise_cache[path]
            audio = self._load(path, "noise")
            if audio is not None:
                self._noise_cache[path] = audio
                cached = self._noise_cache
                while len(cached) > 1 and sum(a.size for a in cached.values()) > _NOISE_CACHE_SAMPLES:
                    cached.popitem(last=False)
                return path, audio
        raise DlspError(f"no usable noise file in the {split} split (all {len(files)} were skipped)")

    def _load(self, path: Path, kind: str) -> np.ndarray | None:
        if path in self.bad:
            return None
        try:
            audio, _ = load_audio(path, sample_rate=self.sample_rate)
            if is_silent(audio):  # can happen after resampling a file just above the threshold
                raise DlspError("audio is silent after resampling", path)
            return audio
        except DlspError as exc:
            self.bad.add(path)
            self.on_skip(path, kind, exc.problem)
            return None

    def _position(self, stream: int, split: str, j: int, n: int) -> int:
        # Position j of a cycle through a fresh shuffle per epoch: every file is used before any repeats.
        epoch = j // n
        key = (stream, split, epoch)
        if key not in self._orders:
            self._orders[key] = _rng(self.seed, stream, SPLITS.index(split), epoch).permutation(n)
        return int(self._orders[key][j % n])


def _warn_skipped(path: Path, kind: str, problem: str) -> None:
    warnings.warn(f"skipped {kind} file {path}: {problem}", stacklevel=3)


def _unreadable(files: list[Path], kind: str, on_skip: Callable[[Path, str, str], None]) -> set[Path]:
    """The files whose header cannot be read or that hold no samples, each reported through `on_skip`."""
    bad = set()
    for path in files:
        try:
            nonempty_info(path)
        except DlspError as exc:
            bad.add(path)
            on_skip(path, kind, exc.problem)
    return bad


def _index_clean(clean_dir: Path, layout: str, bad: set[Path]) -> list[AudioItem]:
    """`index_dataset` of the clean folder without the files in `bad` (pairs and manifests list their own files:
    a bad one stays an error)."""
    return dataset_index.index_dataset(clean_dir, format=layout, exclude=bad)


def _remove_output(out_dir: Path, created: bool) -> None:
    """Remove this run's mixtures and audio folders, and `out_dir` itself if this run created it."""
    _clear_previous_output(out_dir)
    for sub in AUDIO_DIRS:
        folder = out_dir / sub
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if created and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _check_fractions(values: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in values)
    text = ",".join(f"{v:g}" for v in values)
    if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
        raise DlspError(f"bad split {text}: give three fractions TRAIN,VAL,TEST >= 0, e.g. 0.8,0.1,0.1")
    total = sum(values)
    return (values[0] / total, values[1] / total, values[2] / total)


def _check_settings(count: int | None, hours: float | None, sample_rate: int, clip_seconds: float | None,
                    clean_format: str, fractions: tuple[float, float, float]) -> None:
    if count is not None and hours is not None:
        raise DlspError("give either a count or hours of audio, not both")
    if count is not None:
        split_counts(int(count), fractions)
    if hours is not None and not (math.isfinite(hours) and hours > 0):
        raise DlspError(f"hours must be a positive number, got {hours}")
    if not sample_rate > 0:
        raise DlspError(f"sample rate must be positive, got {sample_rate}")
    if clip_seconds is not None and not (math.isfinite(clip_seconds) and clip_seconds * sample_rate >= 1):
        raise DlspError(f"clip length must be positive, got {clip_seconds} s")
    formats = getattr(dataset_index, "FORMATS", None)
    if formats and clean_format not in formats:
        raise DlspError(f"unknown clean format {clean_format!r} (use one of {', '.join(formats)})")


def _check_output_dir(out_dir: Path, inputs: Sequence[Path]) -> None:
    out_abs = Path(os.path.abspath(out_dir))
    for folder in inputs:
        folder_abs = Path(os.path.abspath(folder))
        if out_abs == folder_abs or out_abs.is_relative_to(folder_abs) or folder_abs.is_relative_to(out_abs):
            raise DlspError(f"output folder overlaps the input folder {folder}", out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise DlspError("output exists and is not a folder", out_dir)
        if any(out_dir.iterdir()) and not _is_previous_output(out_dir):
            raise DlspError("output folder is not empty and is not a previous 'dlsp data mix' output; "
                            "choose a new or empty folder", out_dir)
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise DlspError("output folder is not writable", out_dir)
        return
    parent = out_abs.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise DlspError(f"cannot create output folder: {parent} is not a folder", out_dir)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DlspError(f"cannot create output folder: {parent} is not writable", out_dir)


def _is_previous_output(out_dir: Path) -> bool:
    """A folder with our manifest, or the leftovers of a killed run (only our folders and file names)."""
    manifest = out_dir / MANIFEST_NAME
    if manifest.is_file():
        with open(manifest, encoding="utf-8", errors="replace") as handle:
            return handle.readline().strip() == ",".join(MANIFEST_COLUMNS)
    for entry in out_dir.iterdir():
        if entry.name == "README.md" and entry.is_file():
            continue
        if entry.name not in AUDIO_DIRS or not entry.is_dir():
            return False
        if not all(_OUR_AUDIO.match(f.name) or f.name.startswith(TEMP_PREFIX) for f in entry.iterdir()):
            return False
    return True


def _clear_previous_output(out_dir: Path) -> None:
    # The manifest goes first, so no manifest ever points at files that are being replaced.
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for sub in AUDIO_DIRS:
        folder = out_dir / sub
        if folder.is_dir():
            for f in folder.iterdir():
                if f.is_file() and (_OUR_AUDIO.match(f.name) or f.name.startswith(TEMP_PREFIX)):
                    f.unlink()


def _manifest_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _readme(summary: dict, snr: SnrSpec, level: SnrSpec | None, noise_disjoint: bool, seed: int,
            clean_dir: Path, noise_dir: Path) -> str:
    level_text = f"{level.describe('dBFS')} RMS per mixture" if level else "the recordings' own"
    lines = [
        "# Noisy speech corpus (dlsp data mix)", "",
        f"Clean speech from `{os.path.abspath(clean_dir)}`, noise from `{os.path.abspath(noise_dir)}`, "
        f"seed {seed}. SNR {snr.describe()}, drawn per mixture (the manifest's `snr_db`); level {level_text},"
        " scaled down where needed so that no file clips. `clean/`, `noise/` and `noisy/` hold the scaled"
        " speech, the scaled noise and their sum. Speakers are disjoint across splits; noise files are "
        + ("disjoint too, so test noise is unseen in training." if noise_disjoint else
           "shared by all splits (fewer than 3 noise files), so test noise is NOT unseen."), "",
        "| split | mixtures | hours | speakers | noise files |", "|---|---|---|---|---|",
    ]
    for name, n in summary["splits"].items():
        lines.append(f"| {name} | {n['mixtures']} | {n['hours']:.3f} | {n['speakers']} | "
                     f"{n['noise_files']} |")
    return "\n".join([*lines, ""])

"""MFCC segment features of labelled clips, with an on-disk cache.

Each clip is cut into `n_segments` equal segments (`dlsp.audio.features.segment_clip`) and each segment becomes
an `(n_mfcc, frames)` MFCC matrix; every segment carries its clip's label. With `segment_seconds`, segments have
a fixed length: shorter clips are zero-padded (a 1 s keyword in a 1 s segment), longer clips are cut after
`n_segments` segments. Without it, each clip is split into `n_segments` parts of its own length, which only makes
equal-sized features when all clips have the same length (GTZAN's 30 s tracks).

The cache holds one `.npz` file per dataset folder and feature parameters. Inside it is a fingerprint of the
audio (every path, size and modification time); a file whose fingerprint no longer matches is recomputed and
overwritten, so editing, adding or removing audio invalidates it, and changed parameters use another file.

Memory stays bounded for large datasets: features are computed clip by clip into a scratch file and copied into
the (uncompressed) `.npz` in chunks, and when the features exceed `MMAP_BYTES` they are memory-mapped from the
cache file (read-only) instead of loaded, so only the rows a caller indexes are read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from dlsp.audio.features import mfcc, segment_clip, segment_frames
from dlsp.errors import DlspError
from dlsp.fileio import TEMP_PREFIX, atomic_path

CACHE_FORMAT = "dlsp-mfcc-cache/1"
DEFAULT_CACHE = Path.home() / ".cache" / "dlsp" / "features"
# Cached features larger than this are memory-mapped, not loaded into RAM.
MMAP_BYTES = 256 * 2**20


@dataclass(frozen=True)
class FeatureConfig:
    """How clips become MFCC segments.

    Attributes:
        sample_rate: rate every clip is resampled to; None means the most common rate of the training data.
        n_segments: segments per clip (the genre study: 5 or 10 per 30 s track; keywords and digits: 1).
        segment_seconds: fixed segment length (clips padded or cut); None splits each clip into equal parts.
        n_mfcc, n_fft, hop_length, n_mels: MFCC settings (librosa's conventions, see `dlsp.audio.features.mfcc`).
    """

    sample_rate: int | None = None
    n_segments: int = 1
    segment_seconds: float | None = 1.0
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128

    def segment_samples(self, sample_rate: int, clip_samples: int | None = None) -> int:
        """Samples per segment at `sample_rate` (for a clip of `clip_samples` when segments are not fixed)."""
        if self.segment_seconds is not None:
            return max(1, round(self.segment_seconds * sample_rate))
        if clip_samples is None:
            raise DlspError("segment length depends on the clip when features.segment_seconds is null")
        return clip_samples // self.n_segments

    def frames(self, sample_rate: int, clip_samples: int | None = None) -> int:
        """MFCC frames per segment."""
        return segment_frames(self.segment_samples(sample_rate, clip_samples), self.n_fft, self.hop_length)

    def check(self) -> None:
        """Raise `DlspError` for settings that cannot work."""
        if self.n_segments < 1:
            raise DlspError(f"features.n_segments must be at least 1, got {self.n_segments}")
        if self.segment_seconds is not None and not self.segment_seconds > 0:
            raise DlspError(f"features.segment_seconds must be positive, got {self.segment_seconds}")
        if min(self.n_mfcc, self.n_fft, self.hop_length, self.n_mels) < 1 or self.n_mfcc > self.n_mels:
            raise DlspError("features need n_mfcc, n_fft, hop_length, n_mels >= 1 and n_mfcc <= n_mels")
        if self.sample_rate is not None and self.sample_rate < 1:
            raise DlspError(f"features.sample_rate must be positive, got {self.sample_rate}")


def clip_features(audio: np.ndarray | torch.Tensor, sample_rate: int, config: FeatureConfig) -> torch.Tensor:
    """MFCCs of each segment of one clip (or a batch of equal-length clips).

    Shape: `(..., time) -> (..., n_segments, n_mfcc, frames)`, float32.
    """
    signal = torch.as_tensor(audio, dtype=torch.float32)
    segments = segment_clip(signal, config.n_segments, config.segment_samples(sample_rate, signal.shape[-1]))
    return mfcc(segments, sample_rate, n_mfcc=config.n_mfcc, n_fft=config.n_fft, hop_length=config.hop_length,
                n_mels=config.n_mels)


def fixed_length(audio: np.ndarray, sample_rate: int, config: FeatureConfig) -> np.ndarray:
    """The part of a clip the features see, zero-padded to `n_segments` whole segments (fixed lengths only).

    Shape: `(time,) -> (n_segments * segment_samples,)`.
    """
    needed = config.n_segments * config.segment_samples(sample_rate, audio.shape[-1])
    out = np.zeros(needed, dtype=np.float32)
    used = min(needed, audio.shape[-1])
    out[:used] = audio[:used]
    return out


def audio_fingerprint(paths: Sequence[Path]) -> str:
    """Hash of every path with its size and modification time: changes when any audio file changes."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{Path(path).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_file(cache_dir: str | os.PathLike[str], dataset: str | os.PathLike[str], config: FeatureConfig,
               sample_rate: int) -> Path:
    """`<cache_dir>/<dataset name>-<hash of dataset path and parameters>.npz`: one file per dataset + parameters."""
    params = {**asdict(config), "sample_rate": sample_rate, "dataset": str(Path(dataset).resolve())}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(dataset).resolve().name) or "data"
    return Path(cache_dir) / f"{name}-{key}.npz"


@dataclass
class CachedFeatures:
    """Features of the clips that could be used, and why the others could not.

    Attributes:
        paths: the used clips, `(clips,)`.
        features: `(clips, n_segments, n_mfcc, frames)` float32.
        skipped: `{path: reason}` for clips left out (unreadable, too short).
        resampled: `{original rate: count}` of clips resampled to the target rate.
    """

    paths: list[Path]
    features: np.ndarray
    skipped: dict[str, str]
    resampled: dict[int, int]


def read_cache(path: Path, fingerprint: str, mmap_bytes: int | None = None) -> CachedFeatures | None:
    """The cached features if `path` holds them for exactly this audio, else None.

    Features larger than `mmap_bytes` (default `MMAP_BYTES`) come back as a read-only `np.memmap` of the file.
    """
    mmap_bytes = MMAP_BYTES if mmap_bytes is None else mmap_bytes
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != CACHE_FORMAT or str(data["fingerprint"]) != fingerprint:
                return None
            meta = json.loads(str(data["meta"]))
            paths = [Path(p) for p in data["paths"].tolist()]
            size = data.zip.getinfo("features.npy").file_size
            features = _mmap_member(path, "features.npy") if size > mmap_bytes else data["features"]
        if features.shape[0] != len(paths):
            return None
        return CachedFeatures(paths, features, meta["skipped"], {int(k): v for k, v in meta["resampled"].items()})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, struct.error):
        return None  # a torn or foreign file is recomputed, not an error


def write_cache(path: Path, fingerprint: str, cached: CachedFeatures) -> None:
    """Write `cached` atomically under `fingerprint`."""
    features = np.ascontiguousarray(cached.features, dtype=np.float32)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        _write_small_members(archive, fingerprint, cached)
        with archive.open("features.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, features, allow_pickle=False)


def _write_small_members(archive: zipfile.ZipFile, fingerprint: str, cached: CachedFeatures) -> None:
    meta = json.dumps({"skipped": cached.skipped, "resampled": {str(k): v for k, v in cached.resampled.items()}})
    members = {"format": np.array(CACHE_FORMAT), "fingerprint": np.array(fingerprint),
               "paths": np.array([str(p) for p in cached.paths]), "meta": np.array(meta)}
    for name, array in members.items():
        with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, array, allow_pickle=False)


def _mmap_member(path: Path, name: str) -> np.memmap:
    """Memory-map the array `name` stored uncompressed in the `.npz` at `path`."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{name} is compressed")
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError("bad zip local header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(handle)
        offset = handle.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


MIN_CLIP_SECONDS = 0.1  # shorter clips hold too little sound to classify


def fit_window(audio: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray | None:
    """A clip shorter than one analysis window but at least `MIN_CLIP_SECONDS` long, zero-padded on both sides to
    `n_fft` samples (a short spoken digit at 8 kHz is shorter than a 2048-sample window, yet complete); longer clips
    as they are; `None` for clips too short to use.

    Shape: `(time,) -> (max(time, n_fft),)`.
    """
    n = audio.shape[-1]
    if n >= n_fft:
        return audio
    if n < MIN_CLIP_SECONDS * sample_rate:
        return None
    left = (n_fft - n) // 2
    return np.pad(audio, (left, n_fft - n - left))


def extract_features(paths: Sequence[Path], sample_rate: int, config: FeatureConfig,
                     progress: Callable[[Sequence[Path]], Sequence[Path]] | None = None) -> CachedFeatures:
    """Decode, resample and featurise every clip, skipping (and recording) unreadable and too-short clips.

    A clip shorter than one analysis window (`n_fft` samples at `sample_rate`) is zero-padded to one window
    (`fit_window`); one under `MIN_CLIP_SECONDS` is skipped. Without `segment_seconds`, every clip must give the
    same number of frames as the first one.
    """
    result = CachedFeatures([], np.zeros(0, np.float32), {}, {})
    features = [clip for path, clip in _clip_features(paths, sample_rate, config, progress, result)]
    stacked = np.stack(features) if features else np.zeros((0, config.n_segments, config.n_mfcc, 0), np.float32)
    result.features = stacked.astype(np.float32)
    return result


def _clip_features(paths: Sequence[Path], sample_rate: int, config: FeatureConfig,
                   progress: Callable[[Sequence[Path]], Sequence[Path]] | None,
                   into: CachedFeatures) -> Iterator[tuple[Path, np.ndarray]]:
    """Yield `(path, features)` of each usable clip; record kept paths, skips and resampling in `into`."""
    from dlsp.audio.io import audio_info, load_audio, resample

    expected_shape = None
    for path in (progress(paths) if progress else paths):
        try:
            rate = audio_info(path).sample_rate
            audio, _ = load_audio(path, allow_silent=True)
        except DlspError as exc:
            into.skipped[str(path)] = f"unreadable: {str(exc).split(': ', 1)[-1]}"
            continue
        if rate != sample_rate:
            audio = resample(audio, rate, sample_rate)
            into.resampled[rate] = into.resampled.get(rate, 0) + 1
        fitted = fit_window(audio, sample_rate, config.n_fft)
        if fitted is None:
            into.skipped[str(path)] = (f"too short: {audio.shape[-1]} samples at {sample_rate} Hz, under "
                                       f"{MIN_CLIP_SECONDS:g} s")
            continue
        audio = fitted
        clip = clip_features(audio, sample_rate, config).numpy().astype(np.float32, copy=False)
        if expected_shape is not None and clip.shape != expected_shape:
            into.skipped[str(path)] = (f"length differs: gives {clip.shape[-1]} frames per segment, other clips "
                                       f"{expected_shape[-1]} (set features.segment_seconds for clips of mixed "
                                       "lengths)")
            continue
        expected_shape = clip.shape
        into.paths.append(Path(path))
        yield Path(path), clip


def extract_to_cache(paths: Sequence[Path], sample_rate: int, config: FeatureConfig, path: Path,
                     fingerprint: str, progress: Callable[[Sequence[Path]], Sequence[Path]] | None = None) -> None:
    """`extract_features` straight into the cache file `path`, holding one clip in memory at a time.

    Rows go to a scratch file beside the cache as they are computed (the number of usable clips, and so the
    array's shape, is known only at the end), then are copied into the `.npz` in chunks.
    """
    result = CachedFeatures([], np.zeros(0, np.float32), {}, {})
    with _scratch_file(path.parent) as scratch:
        shape: tuple[int, ...] = (config.n_segments, config.n_mfcc, 0)
        with open(scratch, "wb") as rows:
            for _, clip in _clip_features(paths, sample_rate, config, progress, result):
                rows.write(clip.tobytes())
                shape = clip.shape
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": (len(result.paths), *shape)}
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            _write_small_members(archive, fingerprint, result)
            with archive.open("features.npy", "w", force_zip64=True) as member, open(scratch, "rb") as rows:
                np.lib.format.write_array_header_2_0(member, header)
                shutil.copyfileobj(rows, member, 1 << 18)  # small chunks: memory stays flat


@contextlib.contextmanager
def _scratch_file(folder: Path) -> Iterator[Path]:
    # A hidden name with the process id: `dlsp.fileio.remove_stale_temp_files` recognises it after a kill.
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".rows", dir=folder)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def cached_features(paths: Sequence[Path], dataset: str | os.PathLike[str], sample_rate: int,
                    config: FeatureConfig, cache_dir: str | os.PathLike[str] | None,
                    progress: Callable[[Sequence[Path]], Sequence[Path]] | None = None,
                    mmap_bytes: int | None = None) -> tuple[CachedFeatures, bool]:
    """Features of `paths` through the cache; returns them and whether they came from the cache.

    With a cache, features over `mmap_bytes` (default `MMAP_BYTES`) are a read-only memory map of the cache file
    (see `read_cache`).
    """
    paths = sorted(Path(p) for p in paths)
    if cache_dir is None:
        return extract_features(paths, sample_rate, config, progress), False
    fingerprint = audio_fingerprint(paths) + json.dumps(asdict(config), sort_keys=True) + str(sample_rate)
    path = cache_file(cache_dir, dataset, config, sample_rate)
    hit = read_cache(path, fingerprint, mmap_bytes)
    if hit is not None:
        return hit, True
    extract_to_cache(paths, sample_rate, config, path, fingerprint, progress)
    computed = read_cache(path, fingerprint, mmap_bytes)
    if computed is None:
        raise DlspError("feature cache file could not be read back after writing it", path)
    return computed, False

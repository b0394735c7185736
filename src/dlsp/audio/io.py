"""Reading and writing audio files.

Arrays follow one convention throughout dlsp: mono audio is `(time,)`, multichannel audio is `(channels, time)`,
float32 in [-1, 1]. Every problem a user can cause (missing, truncated, non-audio, empty, silent or non-finite
files) raises `DlspError` naming the file; writes are atomic.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from dlsp.errors import DlspError
from dlsp.fileio import atomic_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".au", ".aiff", ".aif", ".mp3")
# Peak below -90 dBFS (under one 16-bit step): nothing but silence or dither.
SILENT_PEAK = 10 ** (-90 / 20)
# Refuse files whose header claims more samples than this before allocating anything (~4 GiB as float32).
MAX_SAMPLES = 1 << 30
# Bytes per sample of uncompressed subtypes in containers that store samples as is: their headers can be
# checked exactly against the file size (FLAC reports PCM_16 too, but compresses).
_PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
              "ULAW": 1, "ALAW": 1}
_PCM_CONTAINERS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "AU", "CAF", "NIST", "IRCAM"})
# Compressed files whose header claims more samples than this are verified (or decoded in blocks) before a
# buffer of the claimed size is allocated: a FLAC header's sample count is not checked against its stream.
TRUSTED_SAMPLES = 1 << 20
READ_BLOCK_FRAMES = 1 << 18
_TRUNCATED_WAV = re.compile(r"^data\s*:\s*\d+\s*\(should be", re.MULTILINE)


class ClippingWarning(UserWarning):
    """Audio exceeded full scale when written to an integer format."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read a file's header, checking that it exists, is audio, is not truncated and is not absurdly long."""
    path = _existing_file(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise DlspError(f"not a readable audio file ({_libsndfile_reason(exc)})", path) from None
    if info.format == "WAV" and _TRUNCATED_WAV.search(info.extra_info or ""):
        raise DlspError("truncated audio file (data chunk shorter than its header says)", path)
    if info.frames * info.channels > MAX_SAMPLES:
        raise DlspError(f"header claims {info.frames} frames x {info.channels} channels, too large to load", path)
    width = _PCM_BYTES.get(info.subtype) if info.format in _PCM_CONTAINERS else None
    if width and info.frames * info.channels * width > path.stat().st_size:
        raise DlspError(f"header claims {info.frames} frames x {info.channels} channels of {info.subtype}, more "
                        f"than the {path.stat().st_size}-byte file holds", path)
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), info.format, info.subtype)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    mono: bool = True,
    allow_silent: bool = False,
) -> tuple[np.ndarray, int]:
    """Load an audio file as float32.

    Args:
        path: wav, flac, ogg, au, aiff or mp3 file of any bit depth.
        sample_rate: resample to this rate (soxr, high quality); `None` keeps the file's rate.
        mono: average the channels; otherwise multichannel files keep their channels.
        allow_silent: accept files whose peak is below -90 dBFS instead of raising.

    Returns:
        `(audio, sample_rate)`; audio is `(time,)` when mono or single-channel, else `(channels, time)`.
    """
    info = audio_info(path)
    if info.frames == 0:
        raise DlspError("audio file is empty (zero samples)", info.path)
    try:
        data, sr = _read_float32(info), info.sample_rate
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DlspError(f"corrupt or truncated audio file ({_libsndfile_reason(exc)})", info.path) from None
    if data.shape[0] == 0:
        raise DlspError("audio file is empty (zero samples)", info.path)
    audio = np.ascontiguousarray(data.T)  # (channels, time)
    check_audio(audio, info.path, allow_silent=allow_silent)
    audio = to_mono(audio) if mono or audio.shape[0] == 1 else audio
    if sample_rate is not None and sample_rate != sr:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    return audio, int(sr)


def _read_float32(info: AudioInfo) -> np.ndarray:
    """All frames as float32 `(time, channels)`, allocating only what the file really holds."""
    with sf.SoundFile(str(info.path)) as handle:
        pcm = info.format in _PCM_CONTAINERS and info.subtype in _PCM_BYTES  # length checked in audio_info
        trusted = pcm or info.frames * info.channels <= TRUSTED_SAMPLES
        if trusted or _has_frame(handle, info.frames - 1):
            handle.seek(0)
            return handle.read(dtype="float32", always_2d=True)
    # The header's length cannot be confirmed: decode block by block so memory follows the stream (from a
    # fresh handle, as a failed seek can leave the decoder unusable).
    with sf.SoundFile(str(info.path)) as handle:
        blocks = []
        while len(block := handle.read(READ_BLOCK_FRAMES, dtype="float32", always_2d=True)):
            blocks.append(block)
        return np.concatenate(blocks) if blocks else np.zeros((0, info.channels), dtype=np.float32)


def _has_frame(handle: sf.SoundFile, index: int) -> bool:
    # Seeking to the last frame the header claims is cheap (FLAC seeks by bisection) and proves the claim.
    try:
        handle.seek(index)
        return len(handle.read(1, dtype="float32", always_2d=True)) == 1
    except (sf.LibsndfileError, RuntimeError):
        return False


def check_audio(audio: np.ndarray, path: str | os.PathLike[str] | None = None, allow_silent: bool = False) -> None:
    """Raise `DlspError` if `audio` is empty, holds NaN/Inf, or (unless allowed) is silent."""
    if audio.size == 0:
        raise DlspError("audio is empty (zero samples)", path)
    if not np.all(np.isfinite(audio)):
        raise DlspError("audio contains NaN or Inf samples", path)
    if not allow_silent and is_silent(audio):
        raise DlspError("audio is silent (peak below -90 dBFS)", path)


def is_silent(audio: np.ndarray) -> bool:
    """True when the peak is below -90 dBFS."""
    return bool(np.max(np.abs(audio)) < SILENT_PEAK) if audio.size else True


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: `(channels, time) -> (time,)`; mono input is returned as is."""
    return audio if audio.ndim == 1 else audio.mean(axis=0, dtype=np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality). Shape: `(..., time) -> (..., time')`."""
    if orig_sr <= 0 or target_sr <= 0:
        raise DlspError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return audio
    lead = audio.shape[:-1]
    flat = audio.reshape(-1, audio.shape[-1]).T  # soxr wants (time, channels)
    out = soxr.resample(np.ascontiguousarray(flat, dtype=np.float32), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(out.T.reshape(*lead, -1), dtype=np.float32)


def save_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
    on_clip: str = "warn",
) -> Path:
    """Write audio atomically (temporary file, then rename); the format follows the file extension.

    Args:
        audio: `(time,)` or `(channels, time)`, float.
        subtype: soundfile subtype such as `PCM_16`, `PCM_24`, `FLOAT`; default is the format's default.
        on_clip: what to do when an integer subtype would clip samples beyond full scale: `warn` (clip and warn
            with the peak), `normalize` (scale the peak to 0.99 and warn), or `error`.
    """
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise DlspError(f"audio must be (time,) or (channels, time), got shape {audio.shape}", path)
    if not np.all(np.isfinite(audio)):
        raise DlspError("refusing to write audio containing NaN or Inf", path)
    fmt = _format_for(path)
    subtype = subtype or sf.default_subtype(fmt)
    if not sf.check_format(fmt, subtype):
        raise DlspError(f"subtype {subtype} is not valid for {fmt} files", path)
    audio = _handle_clipping(audio, subtype, on_clip, path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio.T, int(sample_rate), subtype=subtype, format=fmt)
    return path


def list_audio_files(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Sorted audio files under `folder` (by extension), skipping hidden and temporary files."""
    folder = Path(folder)
    if not folder.exists():
        raise DlspError("folder does not exist", folder)
    if not folder.is_dir():
        raise DlspError("is not a folder", folder)
    pattern = "**/*" if recursive else "*"
    return sorted(
        p
        for p in folder.glob(pattern)
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def _handle_clipping(audio: np.ndarray, subtype: str, on_clip: str, path: Path) -> np.ndarray:
    if on_clip not in ("warn", "normalize", "error"):
        raise ValueError(f"on_clip must be warn, normalize or error, got {on_clip!r}")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 1.0 or subtype in ("FLOAT", "DOUBLE"):
        return audio
    peak_db = 20 * np.log10(peak)
    if on_clip == "error":
        raise DlspError(f"audio peak {peak:.3f} ({peak_db:+.1f} dBFS) would clip in {subtype}", path)
    if on_clip == "normalize":
        warnings.warn(f"{path}: peak {peak:.3f} ({peak_db:+.1f} dBFS), normalized to 0.99", ClippingWarning,
                      stacklevel=3)
        return audio * np.float32(0.99 / peak)
    n_clipped = int(np.count_nonzero(np.abs(audio) > 1.0))
    warnings.warn(f"{path}: peak {peak:.3f} ({peak_db:+.1f} dBFS), {n_clipped} samples clipped", ClippingWarning,
                  stacklevel=3)
    return np.clip(audio, -1.0, 1.0)


def _format_for(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    formats = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "au": "AU", "aiff": "AIFF", "aif": "AIFF", "mp3": "MP3"}
    if ext not in formats:
        raise DlspError(f"unknown audio extension .{ext} (use {', '.join(AUDIO_EXTENSIONS)})", path)
    return formats[ext]


def _existing_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise DlspError("file does not exist", path)
    if path.is_dir():
        raise DlspError("is a directory, expected an audio file", path)
    if not os.access(path, os.R_OK):
        raise DlspError("file is not readable (permission denied)", path)
    return path


def _libsndfile_reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # libsndfile prefixes "Error opening 'name': "; the caller already names the file.
    return re.sub(r"^Error opening .*?: ", "", text).rstrip(".")

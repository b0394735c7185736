"""Audio for speaker embeddings: load at the model's rate, refuse what cannot carry a voice, trim silence.

A clip must last at least `MIN_SECONDS` (0.3 s: a syllable or two) and hold some frame louder than
`SILENCE_DBFS`; anything else is refused with one line rather than turned into a meaningless embedding.
Leading and trailing silence is trimmed the same way in training and at inference, so the embedding describes
the voice, not the pause around it: levels are measured in 25 ms frames every 10 ms, and the frames at either
end more than `trim_db` (40 dB) below the loudest frame are dropped; what is kept runs from the first loud
frame's first sample to the last loud frame's last sample (`speech_bounds`).

A recording to embed must also vary in level like speech (`check_voice`): syllables and pauses make the levels
of speech frames spread widely, while a steady sound (fan, hiss, mains hum) stays within a dB or two. Measured
on ../shared/data, the spread between the 10th and 90th percentile frame level of the trimmed clip was at least
4.2 dB for every FSDD clip (short 8 kHz digits), 11 dB for Arabic Speech Commands and 14 dB for speechocean762
(5.3 dB for speechocean762 drowned in white noise at 0 dB SNR), and at most 0.8 dB for white noise, 0 for a
50 Hz hum and 1.1 to 2.4 dB for the steadiest household and background noises. `MIN_LEVEL_SPREAD_DB` (3 dB)
lies between, so noise or hum louder than the silence floor is refused rather than scored against a voice.
"""

from __future__ import annotations

import os

import numpy as np

from dlsp.audio.io import load_audio
from dlsp.errors import DlspError

MIN_SECONDS = 0.3
SILENCE_DBFS = -60.0
MIN_LEVEL_SPREAD_DB = 3.0
_FRAME_SECONDS, _HOP_SECONDS = 0.025, 0.010


def check_speech(audio: np.ndarray, sample_rate: int, path: str | os.PathLike[str] | None = None,
                 min_seconds: float = MIN_SECONDS) -> None:
    """Raise `DlspError` for audio shorter than `min_seconds` or with no frame above `SILENCE_DBFS`."""
    seconds = audio.shape[-1] / sample_rate
    if seconds < min_seconds:
        raise DlspError(f"audio is too short for a speaker embedding: {seconds:.2f} s, need at least "
                        f"{min_seconds:g} s", path)
    if audio.size == 0 or _frame_db(audio, sample_rate).max() < SILENCE_DBFS:
        raise DlspError(f"audio is silence (no 25 ms frame above {SILENCE_DBFS:g} dBFS): no voice to embed", path)


def load_speech(path: str | os.PathLike[str], sample_rate: int, min_seconds: float = MIN_SECONDS) -> np.ndarray:
    """Load any audio file as mono float32 at `sample_rate` (resampled, channels averaged) and check it."""
    audio, _ = load_audio(path, sample_rate, mono=True, allow_silent=True)
    check_speech(audio, sample_rate, path, min_seconds)
    return audio


def check_voice(audio: np.ndarray, sample_rate: int, path: str | os.PathLike[str] | None = None) -> None:
    """Raise `DlspError` for a steady sound: frame levels spreading less than `MIN_LEVEL_SPREAD_DB` between
    their 10th and 90th percentile (noise, hum; see the module docstring). Pass trimmed audio."""
    spread = level_spread(audio, sample_rate)
    if spread < MIN_LEVEL_SPREAD_DB:
        raise DlspError(f"no voice: a steady sound such as noise or hum (frame levels vary by {spread:.1f} dB, "
                        f"speech by {MIN_LEVEL_SPREAD_DB:g} dB or more)", path)


def level_spread(audio: np.ndarray, sample_rate: int) -> float:
    """Spread in dB between the 10th and 90th percentile of the 25 ms frame levels."""
    low, high = np.percentile(_frame_db(audio, sample_rate), [10, 90])
    return float(high - low)


def speech_bounds(audio: np.ndarray, sample_rate: int, top_db: float = 40.0) -> tuple[int, int]:
    """`(start, stop)` samples from the first to the last frame within `top_db` of the loudest frame (25 ms
    frames every 10 ms; the whole of a clip shorter than one frame)."""
    db = _frame_db(audio, sample_rate)
    loud = np.flatnonzero(db >= db.max() - top_db)
    hop = max(1, round(_HOP_SECONDS * sample_rate))
    frame = max(1, round(_FRAME_SECONDS * sample_rate))
    return int(loud[0] * hop), int(min(audio.shape[-1], loud[-1] * hop + frame))


def trim_silence(audio: np.ndarray, sample_rate: int, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing frames more than `top_db` below the loudest frame (never below one frame)."""
    start, stop = speech_bounds(audio, sample_rate, top_db)
    return audio[..., start:stop]


def _frame_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level in dBFS of 25 ms frames every 10 ms (one frame for shorter audio)."""
    frame = max(1, round(_FRAME_SECONDS * sample_rate))
    hop = max(1, round(_HOP_SECONDS * sample_rate))
    x = np.asarray(audio, dtype=np.float64)
    if x.shape[-1] <= frame:
        return np.array([10 * np.log10(np.mean(x**2) + 1e-20)])
    squares = np.concatenate([[0.0], np.cumsum(x**2)])
    starts = np.arange(0, x.shape[-1] - frame + 1, hop)
    energy = (squares[starts + frame] - squares[starts]) / frame
    return 10 * np.log10(energy + 1e-20)

"""Audio for speaker embeddings: load at the model's rate, refuse what cannot carry a voice, trim silence.

A clip must last at least `MIN_SECONDS` (0.3 s: a syllable or two) and hold some frame louder than
`SILENCE_DBFS`; anything else is refused with one line rather than turned into a meaningless embedding.
Leading and trailing silence is trimmed (frames more than `trim_db` below the loudest) the same way in
training and at inference, so the embedding describes the voice, not the pause around it.
"""

from __future__ import annotations

import os

import numpy as np

from dlsp.audio.io import load_audio
from dlsp.errors import DlspError

MIN_SECONDS = 0.3
SILENCE_DBFS = -60.0
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


def trim_silence(audio: np.ndarray, sample_rate: int, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing frames more than `top_db` below the loudest frame (never below one frame)."""
    db = _frame_db(audio, sample_rate)
    loud = np.flatnonzero(db >= db.max() - top_db)
    hop = max(1, round(_HOP_SECONDS * sample_rate))
    frame = max(1, round(_FRAME_SECONDS * sample_rate))
    start, stop = loud[0] * hop, min(audio.shape[-1], loud[-1] * hop + frame)
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

"""A toy labelled dataset: tones vs noise vs chirps, for tests, examples and smoke runs.

Each class varies enough (random frequencies, levels, sweep directions) that a model must learn the class, not
one clip, yet any of the architectures separates them perfectly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

TOY_CLASSES = ("tone", "noise", "chirp")


def toy_clip(kind: str, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of class `kind` ("tone", "noise" or "chirp"), float32 with a random level in [0.1, 0.5]."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    nyquist = sample_rate / 2
    if kind == "tone":
        audio = np.sin(2 * np.pi * rng.uniform(0.05, 0.4) * nyquist * t + rng.uniform(0, 2 * np.pi))
    elif kind == "noise":
        audio = rng.standard_normal(n)
    elif kind == "chirp":
        low, high = sorted(rng.uniform(0.05, 0.9, size=2) * nyquist)
        start, end = (low, high) if rng.random() < 0.5 else (high, low)
        phase = 2 * np.pi * (start * t + (end - start) * t**2 / (2 * seconds))
        audio = np.sin(phase)
    else:
        raise ValueError(f"unknown toy class {kind!r} (known: {', '.join(TOY_CLASSES)})")
    audio = audio / np.max(np.abs(audio)) * rng.uniform(0.1, 0.5)
    return audio.astype(np.float32)


def write_toy_dataset(root: str | os.PathLike[str], per_class: int = 6, seconds: float = 1.0,
                      sample_rate: int = 8000, seed: int = 0, genres_folder: bool = False) -> list[Path]:
    """Write `<label>/<label>.NNNNN.wav` (GTZAN's naming; under `genres/` if asked) and return the paths."""
    from dlsp.audio.io import save_audio

    rng = np.random.default_rng(seed)
    base = Path(root) / "genres" if genres_folder else Path(root)
    paths = []
    for kind in TOY_CLASSES:
        for index in range(per_class):
            path = base / kind / f"{kind}.{index:05d}.wav"
            save_audio(path, toy_clip(kind, seconds, sample_rate, rng), sample_rate)
            paths.append(path)
    return paths

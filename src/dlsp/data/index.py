"""Dataset indexers (contract stub; the implementation replaces this file)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("auto", "folders", "speakers", "fsdd", "speech-commands", "gtzan", "librispeech", "pairs", "manifest")


@dataclass(frozen=True)
class AudioItem:
    """One audio file of a dataset."""

    path: Path
    label: str | None
    speaker: str | None
    duration: float
    sample_rate: int
    split: str | None = None


def index_dataset(root: str | os.PathLike[str], format: str = "auto") -> list[AudioItem]:
    raise NotImplementedError


def speaker_disjoint_split(
    items: list[AudioItem], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[AudioItem]]:
    raise NotImplementedError

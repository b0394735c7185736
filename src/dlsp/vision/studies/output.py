"""What every study hands back: the results.json figures, a table, and the PNGs it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StudyOutput:
    results: dict[str, Any]
    headers: list[str]
    rows: list[list[Any]]
    figures: list[str] = field(default_factory=list)

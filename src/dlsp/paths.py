"""Where dlsp looks for data and models. Environment variables override; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PRETRAINED_DIR = PACKAGE_DIR / "pretrained"


def data_dirs() -> list[Path]:
    """`$DLSP_DATA` (os.pathsep-separated), then `../shared/data` beside the working directory and the repo."""
    dirs = [Path(p) for p in os.environ.get("DLSP_DATA", "").split(os.pathsep) if p]
    dirs.append(Path.cwd().parent / "shared" / "data")
    repo_shared = PACKAGE_DIR.parents[2] / "shared" / "data"
    if repo_shared not in dirs:
        dirs.append(repo_shared)
    return _unique(dirs)


def model_dirs() -> list[Path]:
    """`$DLSP_MODELS` (os.pathsep-separated), `~/.cache/dlsp/models`, then the models shipped in the package."""
    dirs = [Path(p) for p in os.environ.get("DLSP_MODELS", "").split(os.pathsep) if p]
    dirs.append(Path.home() / ".cache" / "dlsp" / "models")
    dirs.append(PRETRAINED_DIR)
    return _unique(dirs)


def shared_data_dir() -> Path | None:
    """The first data directory that exists, or None (tests skip on None)."""
    return next((d for d in data_dirs() if d.is_dir()), None)


def _unique(paths: list[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        resolved = path.resolve()
        if resolved not in seen:
            seen.append(resolved)
    return seen

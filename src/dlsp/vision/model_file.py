"""Image classifier model files: a dlsp checkpoint with `task="vision"`, the input shape and class names."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from dlsp.errors import DlspError
from dlsp.models.vision import MODELS
from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint


@dataclass
class ClassifierModel:
    """A loaded image classifier (eval mode, CPU) and what it was trained on."""

    model: nn.Module
    name: str
    classes: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def save_classifier(path: str | os.PathLike[str], model: nn.Module, name: str, classes: tuple[str, ...],
                    config: dict[str, Any] | None = None, **extra: Any) -> Path:
    """Write an image classifier model file atomically (factorised layers are recorded in its model args)."""
    return save_checkpoint(path, model, name, task="vision", classes=list(classes), config=config or {}, **extra)


def load_classifier(path: str | os.PathLike[str]) -> ClassifierModel:
    """Load an image classifier model file (plain data, `weights_only=True`)."""
    path = Path(path)
    payload = load_checkpoint(path)
    if payload.get("task") != "vision":
        raise DlspError("not a dlsp image classifier (it holds a different kind of model)", path)
    classes, config = payload.get("classes", []), payload.get("config", {})
    if not isinstance(classes, list | tuple) or not all(isinstance(c, str) for c in classes):
        raise DlspError("model file's 'classes' must be a list of class names", path)
    if not isinstance(config, dict):
        raise DlspError("model file's 'config' must be a mapping", path)
    model = build_from_checkpoint(payload, MODELS, path)
    return ClassifierModel(model, payload["model"], tuple(classes), config, path)

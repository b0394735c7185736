"""Denoiser model files: the network plus the sample rate and STFT it was trained with.

A model file is a dlsp checkpoint (plain data, loaded with `weights_only=True`) whose extra fields say how to
run it: `sample_rate`, `stft` (the `StftConfig` fields) and the training `config`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from dlsp.audio.stft import StftConfig
from dlsp.errors import DlspError
from dlsp.models.denoisers import MODELS
from dlsp.paths import PRETRAINED_DIR
from dlsp.train.checkpoint import average_state_dicts, build_from_checkpoint, load_checkpoint, save_checkpoint

DEFAULT_MODEL_NAME = "denoiser.pt"


@dataclass
class DenoiserModel:
    """A loaded denoiser: the network (eval mode, on CPU) and how to feed it."""

    model: nn.Module
    name: str
    sample_rate: int
    stft: StftConfig
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def kind(self) -> str:
        """What must match for two denoisers to share weights: model, arguments, sample rate and STFT."""
        return (f"{self.name} {self.model.get_model_args()} at {self.sample_rate} Hz, n_fft {self.stft.n_fft}, "
                f"hop {self.stft.hop_length}, {self.stft.window} window")


def save_denoiser(path: str | os.PathLike[str], model: nn.Module, name: str, *, sample_rate: int,
                  stft: StftConfig, config: dict[str, Any] | None = None, **extra: Any) -> Path:
    """Write a denoiser model file atomically."""
    return save_checkpoint(path, model, name, task="denoise", sample_rate=int(sample_rate), stft=asdict(stft),
                           config=config or {}, **extra)


def load_denoiser(path: str | os.PathLike[str] | None = None) -> DenoiserModel:
    """Load a denoiser model file; `None` loads the default model shipped in the package, and the name of another
    bundled model (`unet`: see `bundled_models`) loads that one."""
    path = default_model_path() if path is None else resolve_model(path)
    payload = load_checkpoint(path)
    if payload.get("task") != "denoise" or "sample_rate" not in payload or "stft" not in payload:
        raise DlspError("not a dlsp denoiser model file (it holds a different kind of model)", path)
    sample_rate, stft, config = payload["sample_rate"], payload["stft"], payload.get("config", {})
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise DlspError(f"model file has a bad sample_rate {sample_rate!r} (expected a positive integer)", path)
    if not isinstance(stft, dict) or not isinstance(config, dict):
        raise DlspError("model file's 'stft' and 'config' must be mappings", path)
    if not all(isinstance(value, int | float | str | bool | None) for value in stft.values()):
        # weights_only loading admits tensors anywhere; STFT settings are plain numbers and names.
        raise DlspError("model file has bad STFT settings (not plain numbers and names)", path)
    try:
        stft_config = StftConfig(**stft)
    except (TypeError, ValueError, DlspError) as exc:
        raise DlspError(f"model file has bad STFT settings ({str(exc)[:160]})", path) from None
    model = build_from_checkpoint(payload, MODELS, path)
    return DenoiserModel(model, payload["model"], sample_rate, stft_config, config, path)


def average_denoisers(paths: list[str | os.PathLike[str]]) -> DenoiserModel:
    """One denoiser whose weights are the mean of several model files' (`average_state_dicts`): the files must
    hold the same model with the same arguments, sample rate and STFT, best fine-tuned from one starting point
    (weights of unrelated trainings do not average into a working model). The result keeps the first file's
    training config.
    """
    if len(paths) < 2:
        raise DlspError("averaging needs at least two model files")
    models = [load_denoiser(path) for path in paths]
    first = models[0]
    for other in models[1:]:
        if other.kind() != first.kind():
            raise DlspError(f"cannot average {other.kind()} with {first.kind()} ({first.path}): averaging needs the "
                            f"same model, arguments, rate and STFT", other.path)
    first.model.load_state_dict(average_state_dicts([m.model.state_dict() for m in models]))
    return first


def default_model_path() -> Path:
    """The default pretrained denoiser shipped with dlsp."""
    path = PRETRAINED_DIR / DEFAULT_MODEL_NAME
    if not path.exists():
        raise DlspError("no default denoiser is installed; pass --model MODEL (train one with "
                        "'dlsp denoise train')", path)
    return path


def bundled_models() -> dict[str, Path]:
    """The other pretrained denoisers shipped in the package (`pretrained/denoiser_NAME.pt`), by name."""
    return {path.stem.removeprefix("denoiser_"): path for path in sorted(PRETRAINED_DIR.glob("denoiser_*.pt"))}


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """A model file path, or the file of a bundled model named `model` when no such file exists."""
    path = Path(model)
    if not path.exists() and str(model) in bundled_models():
        return bundled_models()[str(model)]
    return path


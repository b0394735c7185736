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
from dlsp.train.checkpoint import (
    average_state_dicts,
    build_from_checkpoint,
    load_checkpoint,
    round_to_half,
    save_checkpoint,
)

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


MAX_DEFAULT_BYTES = 5 * 1024 * 1024
DEFAULT_PROVENANCE = (
    "Trained by recipes/denoise_default.yaml on ../shared/data: speech from the Free Spoken Digit Dataset "
    "(CC BY-SA 4.0), Arabic Speech Commands (CC BY 4.0, Ghandoura et al. 2021) and speechocean762 (Zhang et al. "
    "2021; Apache 2.0); noise from Timgrau/Projektarbeit-1 household/street clips (CC0), the Speech Commands "
    "background noises (CC BY 4.0, Warden 2018) and moodist's ambient recordings (Pixabay Content License / CC0). "
    "Never trained on: the cross-corpus benchmark's speakers and noise kinds (dlsp.data.holdout, @crosscorpus)."
)


def publish_default(source: str | os.PathLike[str], target: str | os.PathLike[str] | None = None,
                    name: str | None = None, recipe: str = "recipes/denoise_default.yaml") -> Path:
    """Copy a trained model file into the package as the default denoiser (or, with `name`, as the bundled
    model of that name), with its provenance and its ONNX export beside it (`model.onnx`, which the CPU runs
    with onnxruntime; see `dlsp.denoise.export.companion_onnx`).

    Weights are stored as float16 (the model computes with the rounded weights; evaluate the published file).
    Refuses models whose two files together exceed 5 MB (the package must stay small). Needs `dlsp[onnx]`.
    """
    from dlsp.denoise.export import export_onnx

    loaded = load_denoiser(source)
    if target is None:
        target = PRETRAINED_DIR / (f"denoiser_{name}.pt" if name else DEFAULT_MODEL_NAME)
    target = Path(target)
    provenance = DEFAULT_PROVENANCE.replace("recipes/denoise_default.yaml", recipe)
    round_to_half(loaded.model)  # the export below then holds exactly the weights the float16 file will
    # Both files are written beside the target first and renamed only when both exist and fit: a failed export or
    # an oversized model leaves the published pair as it was.
    staged_onnx = export_onnx(loaded, target.with_name(f".{target.stem}.publishing.onnx"))
    staged = target.with_name(f".{target.name}.publishing")
    try:
        save_denoiser(staged, loaded.model, loaded.name, sample_rate=loaded.sample_rate, stft=loaded.stft,
                      config=loaded.config, provenance=provenance, half=True)
        size = staged.stat().st_size + staged_onnx.stat().st_size
        if size > MAX_DEFAULT_BYTES:
            raise DlspError(f"model and its ONNX export are {size / 2**20:.1f} MB; a bundled model must be at most "
                            f"5 MB", source)
        os.replace(staged, target)
        os.replace(staged_onnx, target.with_suffix(".onnx"))
    finally:
        staged.unlink(missing_ok=True)
        staged_onnx.unlink(missing_ok=True)
    return target

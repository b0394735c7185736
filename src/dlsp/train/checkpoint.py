"""Checkpoints: model name and arguments beside the weights, written atomically, loaded without running code.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so `torch.load(weights_only=True)`
can read it and a file from a stranger cannot execute anything.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.fileio import atomic_path

FORMAT = "dlsp-checkpoint/1"


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, name: str, **extra: Any) -> Path:
    """Write `{format, model, model_args, state_dict, **extra}` atomically.

    `model` must offer `get_model_args()`; `extra` holds plain data (config dicts, sample rate, metrics...).
    """
    payload = {
        "format": FORMAT,
        "model": name,
        "model_args": model.get_model_args(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint safely (`weights_only=True`), checking it is a dlsp checkpoint."""
    path = Path(path)
    if not path.exists():
        raise DlspError("model file does not exist", path)
    if path.is_dir():
        raise DlspError("is a directory, expected a model file", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DlspError(f"refused to load: not a plain-data checkpoint ({str(exc).splitlines()[0][:120]})",
                        path) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise DlspError(f"not a readable model file ({str(exc).splitlines()[0][:120]})", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DlspError("not a dlsp checkpoint (missing format marker)", path)
    return payload


def build_from_checkpoint(payload: dict[str, Any], registry: dict[str, type[nn.Module]],
                          path: str | os.PathLike[str] | None = None) -> nn.Module:
    """Rebuild the model a checkpoint describes from `registry` and load its weights.

    `model_args["low_rank"]` (`{layer path: rank}`, written by `dlsp compress`) is not a constructor argument:
    those linear layers are replaced by low-rank factors before the weights are loaded.
    """
    name = payload.get("model")
    if name not in registry:
        raise DlspError(f"checkpoint holds unknown model {name!r} (known: {', '.join(sorted(registry))})", path)
    try:
        args = dict(payload["model_args"])
        low_rank = args.pop("low_rank", None)
        model = registry[name](**args)
        if low_rank:
            from dlsp.models.lowrank import apply_low_rank_structure

            apply_low_rank_structure(model, low_rank)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, KeyError) as exc:
        raise DlspError(f"checkpoint does not match model {name!r} ({str(exc).splitlines()[0][:160]})",
                        path) from None
    return model.eval()

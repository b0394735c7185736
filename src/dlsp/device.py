"""Choosing where tensors live. `auto` means CUDA when present, else CPU; no code assumes CPU."""

from __future__ import annotations

import torch

from dlsp.errors import DlspError


def resolve_device(name: str = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a `torch.device`, checking that it exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DlspError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DlspError(f"device {name!r} requested but CUDA is not available")
    return device

"""Checkpoints: model name and arguments beside the weights, written atomically, loaded without running code.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so `torch.load(weights_only=True)`
can read it and a file from a stranger cannot execute anything.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.fileio import atomic_path

FORMAT = "dlsp-checkpoint/1"


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, name: str, *, half: bool = False,
                    **extra: Any) -> Path:
    """Write `{format, model, model_args, state_dict, **extra}` atomically.

    `model` must offer `get_model_args()`; `extra` holds plain data (config dicts, sample rate, metrics...).
    `half` stores float32 weights as float16 (half the file; loading casts them back to the model's dtype), for
    models shipped in the package: the model then computes with the rounded weights, so round it first
    (`round_to_half`) and evaluate what ships.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: _as_half(v) for k, v in state.items()}
    payload = {
        "format": FORMAT,
        "model": name,
        "model_args": model.get_model_args(),
        "state_dict": state,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def weights_id(model: nn.Module) -> str:
    """First 16 hex digits of a SHA-256 over the weights (names, shapes and values, in order): what
    identifies a trained model across formats (a checkpoint and its ONNX export share it)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def round_to_half(model: nn.Module) -> nn.Module:
    """Round `model`'s float32 weights and buffers to the nearest float16 value in place (those float16 cannot
    hold are kept), so it computes what a `half=True` checkpoint of it will. Returns `model`."""
    for tensor in [*model.parameters(), *model.buffers()]:
        tensor.copy_(_as_half(tensor).to(tensor.dtype))
    return model


def _as_half(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dtype != torch.float32:
        return tensor
    rounded = tensor.half()
    # A value beyond float16's range would become inf: such a tensor stays float32.
    return rounded if torch.equal(torch.isfinite(rounded), torch.isfinite(tensor)) else tensor


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
        raise DlspError(f"refused to load: not a plain-data checkpoint ({_first_line(exc)})", path) from None
    except Exception as exc:
        # The weights-only unpickler calls nothing outside its allow-list, so any other failure (broken zip,
        # bad opcodes: KeyError, IndexError, OverflowError...) just means a damaged file.
        raise DlspError(f"not a readable model file ({_first_line(exc)})", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DlspError("not a dlsp checkpoint (missing format marker)", path)
    return payload


def model_file_in(path: str | os.PathLike[str] | None, kind: str, command: str) -> Path:
    """`path` itself, or the `best.pt` of a run folder: what `from_file` of an inference class that ships no model
    accepts (`kind`, e.g. "clip classifier", and the `command` that trains one name it when `path` is None)."""
    if path is None:
        raise DlspError(f"no {kind} ships with dlsp: give a model file or a run folder (train one with '{command}')")
    path = Path(path)
    if path.is_dir():
        if not (path / "best.pt").exists():
            raise DlspError("no best.pt in this run folder (has training finished an epoch?)", path)
        return path / "best.pt"
    return path


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the floating-point tensors of several state dicts of one architecture (a "model
    soup": models fine-tuned from one starting point often average into a better one); integer tensors (counters) are
    taken from the first.

    Raises:
        ValueError: no states, or states with different keys or shapes (a caller's bug: check the models first).
    """
    if not states:
        raise ValueError("nothing to average")
    first = states[0]
    for state in states[1:]:
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise ValueError("state dicts of different architectures cannot be averaged")
    return {key: torch.stack([state[key].float() for state in states]).mean(0).to(tensor.dtype)
            if tensor.is_floating_point() else tensor.clone() for key, tensor in first.items()}


def _first_line(exc: BaseException, limit: int = 120) -> str:
    lines = str(exc).splitlines()
    return lines[0][:limit] if lines and lines[0] else type(exc).__name__


def build_from_checkpoint(payload: dict[str, Any], registry: dict[str, type[nn.Module]],
                          path: str | os.PathLike[str] | None = None) -> nn.Module:
    """Rebuild the model a checkpoint describes from `registry` and load its weights.

    `model_args["low_rank"]` (`{layer path: rank}`, written by `dlsp compress`) is not a constructor argument:
    those linear layers are replaced by low-rank factors before the weights are loaded.
    """
    name = payload.get("model")
    if not isinstance(name, str) or name not in registry:
        raise DlspError(f"checkpoint holds unknown model {name!r} (known: {', '.join(sorted(registry))})", path)
    args, state = payload.get("model_args"), payload.get("state_dict")
    if not isinstance(args, dict) or not all(isinstance(key, str) for key in args):
        raise DlspError("checkpoint 'model_args' is not a mapping of argument names", path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DlspError("checkpoint 'state_dict' is not a mapping of tensors", path)
    try:
        # A skeleton on the meta device costs no memory: model args that describe a far larger network than
        # the file's weights (hidden=10**9) are refused before anything real is allocated.
        with torch.device("meta"):
            _check_size(_build(registry[name], args), state)
        model = _build(registry[name], args)
        model.load_state_dict(state)
    except DlspError as exc:
        raise DlspError(f"checkpoint does not match model {name!r} ({exc.problem})", path) from None
    except (TypeError, ValueError, RuntimeError, KeyError, IndexError, AttributeError, OverflowError,
            ZeroDivisionError, MemoryError) as exc:
        # Constructors check their arguments with these; from a file, any of them means a damaged checkpoint.
        raise DlspError(f"checkpoint does not match model {name!r} ({_first_line(exc, 160)})", path) from None
    return model.eval()


def _build(cls: type[nn.Module], model_args: dict[str, Any]) -> nn.Module:
    args = dict(model_args)
    low_rank = args.pop("low_rank", None)
    model = cls(**args)
    if low_rank:
        from dlsp.models.lowrank import apply_low_rank_structure

        apply_low_rank_structure(model, low_rank)
    return model


# Values a model may hold beyond its saved weights (non-persistent buffers such as STFT windows).
MAX_UNSAVED_VALUES = 1 << 22


def _check_size(skeleton: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Refuse model args whose network holds far more values than the checkpoint's weights."""
    wanted = sum(t.numel() for t in skeleton.parameters()) + sum(t.numel() for t in skeleton.buffers())
    stored = sum(t.numel() for t in state.values())
    if wanted > stored + MAX_UNSAVED_VALUES:
        raise DlspError(f"model args describe {wanted:,} values but the file stores {stored:,} weights")

"""Compressing any dlsp model file: every linear layer where rank D saves parameters becomes U V^T.

Works on image classifiers and on denoisers (any checkpoint whose model has `nn.Linear` layers); the output is
the same kind of model file with `model_args["low_rank"]` recording the factorised layers, so the usual loaders
(`dlsp denoise run --model`, `dlsp vision eval`) rebuild it. Image classifiers can be fine-tuned afterwards on
their training data.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.fileio import atomic_path
from dlsp.models.lowrank import compress_model, count_parameters, low_rank_ranks
from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint


def model_registry(task: str | None) -> dict[str, type[nn.Module]]:
    """The model classes a checkpoint of `task` may name."""
    from dlsp.models.denoisers import MODELS as DENOISERS
    from dlsp.models.vision import MODELS as CLASSIFIERS

    if task == "vision":
        return CLASSIFIERS
    if task == "denoise":
        return DENOISERS
    return {**DENOISERS, **CLASSIFIERS}


def compress_file(source: str | os.PathLike[str], out: str | os.PathLike[str], rank: int, finetune_epochs: int = 0,
                  data_dir: str | None = None, finetune_lr: float = 1e-3, device_name: str = "auto",
                  progress: bool = True) -> dict[str, Any]:
    """Write a rank-`rank` version of the model file `source` to `out`; returns before/after figures."""
    payload = load_checkpoint(source)
    model = build_from_checkpoint(payload, model_registry(payload.get("task")), source)
    before = count_parameters(model)
    already = low_rank_ranks(model)
    layers = compress_model(model, rank)
    if not layers:
        raise DlspError(f"no linear layer of this {payload['model']!r} model gets smaller at rank {rank}"
                        + (" (it is already factorised)" if already else ""), source)
    figures: dict[str, Any] = {"model": payload["model"], "rank": rank, "layers": layers,
                               "params_before": before, "params_after": count_parameters(model)}
    if payload.get("task") == "vision":
        figures.update(_vision_figures(payload, model, finetune_epochs, data_dir, finetune_lr, device_name,
                                       progress))
    elif finetune_epochs:
        raise DlspError(f"--finetune needs an image classifier; this is a {payload.get('task', 'unknown')!r} model "
                        "(compress without fine-tuning, or retrain it with its own training command)", source)
    out_payload = {**payload, "model_args": {**payload["model_args"], "low_rank": {**already, **layers}},
                   "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                   "compression": {"rank": rank, "finetune_epochs": finetune_epochs, "source": str(source)}}
    with atomic_path(out) as tmp:
        torch.save(out_payload, tmp)
    figures["bytes_before"], figures["bytes_after"] = Path(source).stat().st_size, Path(out).stat().st_size
    return figures


def _vision_figures(payload: dict[str, Any], model: nn.Module, finetune_epochs: int, data_dir: str | None,
                    finetune_lr: float, device_name: str, progress: bool) -> dict[str, Any]:
    from dlsp.config import from_dict
    from dlsp.device import resolve_device
    from dlsp.vision.config import VisionConfig
    from dlsp.vision.data import load_vision_data
    from dlsp.vision.training import accuracy_of, train_classifier

    config = from_dict(VisionConfig, payload.get("config") or {})
    if data_dir is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, dir=data_dir))
    try:
        data = load_vision_data(config.data)
    except DlspError as exc:
        if finetune_epochs:
            raise DlspError(f"fine-tuning needs the training data: {exc} (pass --data DIR)") from None
        return {}
    if data.input_shape != tuple(model.input_shape):
        raise DlspError(f"the model takes {model.input_shape} images but the data has {data.input_shape}; "
                        "pass --data DIR with the dataset it was trained on")
    device = resolve_device(device_name)
    original = build_from_checkpoint(payload, model_registry("vision"))
    figures = {"test_accuracy_before": accuracy_of(original, data.test, device),
               "test_accuracy_svd": accuracy_of(model, data.test, device)}
    if finetune_epochs:
        tuned = copy.deepcopy(model)
        train_classifier(tuned, data.train, data.val, epochs=finetune_epochs, batch_size=config.train.batch_size,
                         device=device, lr=finetune_lr, seed=config.train.seed + 100, select=config.train.select,
                         progress=progress)
        model.load_state_dict(tuned.state_dict())
        figures["test_accuracy_finetuned"] = accuracy_of(model, data.test, device)
    model.cpu()
    return figures

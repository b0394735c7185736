"""Compressing any dlsp model file: every linear layer where rank D saves parameters becomes U V^T.

Works on image classifiers and on denoisers (any checkpoint whose model has `nn.Linear` layers); the output is
the same kind of model file with `model_args["low_rank"]` recording the factorised layers, so the usual loaders
(`dlsp denoise run --model`, `dlsp vision eval`) rebuild it. What a task does with the factorised model before it
is written (image classifiers: test accuracy before and after, fine-tuning on their training data,
`dlsp.vision.compression`) comes in as `evaluate`, so this module needs no task package.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


def compress_file(source: str | os.PathLike[str], out: str | os.PathLike[str], rank: int,
                  evaluate: Callable[[dict[str, Any], nn.Module], dict[str, Any]] | None = None,
                  finetune_epochs: int = 0) -> dict[str, Any]:
    """Write a rank-`rank` version of the model file `source` to `out`; returns before/after figures.

    `evaluate(payload, factorised_model)` may measure or fine-tune the factorised model in place before it is
    written and returns more figures; `finetune_epochs` is only recorded in the file.
    """
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
    if evaluate is not None:
        figures.update(evaluate(payload, model))
    out_payload = {**payload, "model_args": {**payload["model_args"], "low_rank": {**already, **layers}},
                   "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                   "compression": {"rank": rank, "finetune_epochs": finetune_epochs, "source": str(source)}}
    with atomic_path(out) as tmp:
        torch.save(out_payload, tmp)
    figures["bytes_before"], figures["bytes_after"] = Path(source).stat().st_size, Path(out).stat().st_size
    return figures

"""What `dlsp compress` does with a factorised image classifier before writing it: test accuracy of the original
and of the factorised model, and optional fine-tuning on its training data (`compression_figures`, handed to
`dlsp.models.compress.compress_file` as its `evaluate`)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from dlsp.config import from_dict
from dlsp.device import resolve_device
from dlsp.errors import DlspError
from dlsp.models.compress import model_registry
from dlsp.train.checkpoint import build_from_checkpoint
from dlsp.vision.config import VisionConfig
from dlsp.vision.data import load_vision_data
from dlsp.vision.training import accuracy_of, train_classifier


def compression_figures(source: str | Path, finetune_epochs: int = 0, data_dir: str | None = None,
                        finetune_lr: float = 1e-3, device_name: str = "auto", progress: bool = True
                        ) -> Callable[[dict[str, Any], nn.Module], dict[str, Any]]:
    """The `evaluate` step for the model file `source`: for an image classifier, test accuracies (when its data
    is found) and `finetune_epochs` of fine-tuning; other models get no figures and refuse fine-tuning."""

    def evaluate(payload: dict[str, Any], model: nn.Module) -> dict[str, Any]:
        if payload.get("task") != "vision":
            if finetune_epochs:
                raise DlspError(f"--finetune needs an image classifier; this is a "
                                f"{payload.get('task', 'unknown')!r} model (compress without fine-tuning, or "
                                "retrain it with its own training command)", source)
            return {}
        return _vision_figures(payload, model, finetune_epochs, data_dir, finetune_lr, device_name, progress)

    return evaluate


def _vision_figures(payload: dict[str, Any], model: nn.Module, finetune_epochs: int, data_dir: str | None,
                    finetune_lr: float, device_name: str, progress: bool) -> dict[str, Any]:
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

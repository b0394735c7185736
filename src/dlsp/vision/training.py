"""Training and evaluating image classifiers with the one training loop (`dlsp.train.loop.fit`).

The step is cross-entropy on logits. With `select="accuracy"` the loop's validation figure is the error rate
(1 - accuracy), so the best epoch is the most accurate one rather than the one with the lowest loss (with
dropout the validation loss creeps up long after accuracy stops improving). Per-parameter-group learning
rates (e.g. a pretrained trunk at 1e-5 and a new head at 1e-3) go straight to the optimiser.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlsp.data.images import ImageSplit
from dlsp.errors import DlspError
from dlsp.fileio import append_json_line
from dlsp.train.loop import FitResult, fit
from dlsp.train.run import make_optimizer
from dlsp.vision.data import Transform, batches

LR_SCHEDULES = ("constant", "cosine")


def classification_step(select: str = "accuracy") -> Callable[[nn.Module, Any], torch.Tensor]:
    """`(model, (images, labels)) -> loss`: cross-entropy in training; in eval, the error rate if `select` is
    `accuracy`, else cross-entropy."""

    def step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        logits = model(images)
        if model.training or select == "loss":
            return F.cross_entropy(logits, labels)
        return (logits.argmax(1) != labels).float().mean()

    return step


def param_groups(model: nn.Module, lrs: dict[str, float]) -> list[dict[str, Any]]:
    """Optimiser groups `{"params": ..., "lr": lr, "name": name}`, one per submodule named in `lrs` (a child such
    as `trunk`, or a dotted path such as `trunk.4`).

    Every trainable parameter must fall in exactly one named submodule (so nothing trains at a silent default).
    """
    groups = []
    covered = set()
    for name, lr in lrs.items():
        params = [p for p in model.get_submodule(name).parameters() if p.requires_grad]
        if any(id(p) in covered for p in params):
            raise ValueError(f"{name} overlaps a submodule named before it")
        covered.update(id(p) for p in params)
        groups.append({"params": params, "lr": float(lr), "name": name})
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    if missing:
        raise ValueError(f"parameters without a learning rate: {', '.join(missing[:5])}")
    return groups


def train_classifier(
    model: nn.Module,
    train: ImageSplit,
    val: ImageSplit,
    *,
    epochs: int,
    batch_size: int,
    device: torch.device,
    lr: float | None = 1e-3,
    lrs: dict[str, float] | None = None,
    seed: int = 0,
    select: str = "accuracy",
    patience: int | None = None,
    max_seconds: float | None = None,
    transform: Transform | None = None,
    progress: bool = True,
    metrics_path: Path | None = None,
    on_epoch_end: Callable[[dict[str, float], bool], None] | None = None,
    lr_schedule: str = "constant",
) -> FitResult:
    """Adam on `train`, validation accuracy every epoch, the best epoch's weights left in `model`.

    `lrs` (`{child name: lr}`) sets per-group learning rates instead of the single `lr`. Each epoch reshuffles
    (and re-draws `transform`, e.g. on-the-fly augmentation) with seed `seed + epoch`. Each record gets
    `val_accuracy` and `epoch_seconds`; with `metrics_path` the records are appended there as JSON lines.
    `lr_schedule="cosine"` decays every group's rate from its start value towards 0 over `epochs`.
    """
    if lr_schedule not in LR_SCHEDULES:
        raise DlspError(f"unknown lr schedule {lr_schedule!r} ({', '.join(LR_SCHEDULES)})")
    model.to(device)
    optimizer = make_optimizer(param_groups(model, lrs) if lrs else model.parameters(), lr or 1e-3)
    start_lrs = [group["lr"] for group in optimizer.param_groups]
    last = [time.perf_counter()]

    def record_epoch(record: dict[str, float], improved: bool) -> None:
        now = time.perf_counter()
        record["epoch_seconds"] = now - last[0]
        last[0] = now
        if metrics_path is not None:
            append_json_line(metrics_path, record)
        if on_epoch_end:
            on_epoch_end(record, improved)

    return fit(
        model, classification_step(select), optimizer,
        train_batches=lambda epoch: scheduled(
            optimizer, start_lrs, lr_factor(lr_schedule, epoch, epochs),
            batches(train.images, train.labels, batch_size, device, seed + epoch, transform)),
        val_batches=lambda: batches(val.images, val.labels, 1024, device),
        epochs=epochs, patience=patience, max_seconds=max_seconds, progress=progress,
        on_epoch_end=record_epoch,
        val_metrics=lambda m: {"val_accuracy": accuracy_of(m, val, device)},
    )


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning-rate multiplier of `epoch` (0-based) out of `epochs`."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    return 1.0


def scheduled(optimizer: torch.optim.Optimizer, start_lrs: list[float], factor: float, epoch_batches):
    for group, start in zip(optimizer.param_groups, start_lrs, strict=True):
        group["lr"] = start * factor
    return epoch_batches


@torch.no_grad()
def predict_proba(model: nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 1024) -> np.ndarray:
    """Softmax probabilities `(n, classes)` in eval mode."""
    model.eval()
    out = [F.softmax(model(torch.from_numpy(images[i:i + batch_size]).to(device)), dim=1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def accuracy_of(model: nn.Module, split: ImageSplit, device: torch.device) -> float:
    """Fraction of `split` classified correctly."""
    return float(np.mean(predict_proba(model, split.images, device).argmax(1) == split.labels))


def inference_seconds(model: nn.Module, images: np.ndarray, repeats: int = 10, batch_size: int = 1024) -> float:
    """Median CPU wall time to classify `images` (the model is copied to the CPU for this; one thread as set)."""
    import copy

    cpu_model = copy.deepcopy(model).cpu().eval()
    x = torch.from_numpy(images)
    times = []
    with torch.no_grad():
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            for i in range(0, len(x), batch_size):
                cpu_model(x[i:i + batch_size])
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def history_figures(result: FitResult) -> dict[str, Any]:
    """The summary a results.json records for one training."""
    ends = [h["seconds"] for h in result.history]
    epoch_seconds = np.diff([0.0, *ends])
    best = result.history[result.best_epoch] if result.history else {}
    return {"epochs": len(result.history), "best_epoch": result.best_epoch + 1, "stopped": result.stopped,
            "val_accuracy": best.get("val_accuracy", best.get("val_pretext_accuracy")), "seconds": result.seconds,
            "seconds_per_epoch": float(np.mean(epoch_seconds)) if len(epoch_seconds) else None}


def val_accuracy_curve(result: FitResult) -> tuple[list[int], list[float]]:
    """(1-based epochs, validation accuracy) of a training history."""
    return [int(h["epoch"]) + 1 for h in result.history], [float(h["val_accuracy"]) for h in result.history]

"""One training loop: the model, a step function, the optimiser and batch sources are passed in.

A task supplies `step(model, batch) -> loss`; the loop handles modes, gradients, validation, the best weights,
early stopping, a time budget, progress bars and non-finite losses.
"""

from __future__ import annotations

import copy
import gc
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.progress import progress_bar
from dlsp.train import distributed
from dlsp.train.distributed import batch_length, shard
from dlsp.train.tracking import Tracker

StepFn = Callable[[nn.Module, Any], torch.Tensor]


@dataclass
class FitResult:
    """What training produced: per-epoch history and the best epoch (its weights are loaded into the model).

    `best_epoch` and each record's `epoch` are 0-based indices into `history`; everything people read (progress
    bars, printed summaries, `results.json`'s `best_epoch`) counts epochs from 1, i.e. shows `best_epoch + 1`.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    stopped: str = "epochs"
    seconds: float = 0.0
    # With `train.average_last` (dlsp.train.run): the shipped average's record, `averaged_epochs` its first and
    # last epoch (counted from 1).
    averaged: dict[str, Any] | None = None

    def shipped(self) -> tuple[str, dict[str, Any]]:
        """What the run ships and its record: `("best epoch N", record)` or `("mean of epochs A-B", record)`."""
        if self.averaged is not None:
            first, last = self.averaged["averaged_epochs"]
            return f"mean of epochs {first}-{last}", self.averaged
        return f"best epoch {self.best_epoch + 1}", self.history[self.best_epoch] if self.history else {}


def fit(
    model: nn.Module,
    step: StepFn,
    optimizer: torch.optim.Optimizer,
    train_batches: Callable[[int], Iterable[Any]],
    val_batches: Callable[[], Iterable[Any]] | None = None,
    epochs: int = 10,
    patience: int | None = None,
    max_seconds: float | None = None,
    grad_clip: float | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float], bool], None] | None = None,
    resume: FitResult | None = None,
    val_metrics: Callable[[nn.Module], dict[str, float]] | None = None,
    monitor: str = "val_loss",
    tracker: Tracker | None = None,
) -> FitResult:
    """Train `model` and leave the weights of the best validation epoch in it.

    Args:
        train_batches: called with the epoch number, returns that epoch's batches (lets tasks reshuffle or
            remix data every epoch).
        val_batches: returns the validation batches; without it the training loss picks the best epoch.
        patience: stop after this many epochs without a better validation loss.
        max_seconds: stop after the first epoch that ends past this wall-clock budget (of this call).
        on_epoch_end: called with the epoch's record and whether it is the best so far (to write checkpoints).
        resume: the result of an interrupted run: training continues after its last epoch, keeping its
            history and best epoch (the caller restores model and optimiser state).
        val_metrics: extra validation figures per epoch (e.g. SI-SDR), stored in the history.
        tracker: receives each epoch's record (`dlsp.train.tracking`), with the epoch as the step.
        monitor: the record key whose lowest value picks the best epoch (and drives patience), e.g. a
            `val_metrics` figure such as `val_eer`; `result.best_val_loss` then holds that figure.

    Under `torchrun` (`dlsp.train.distributed`) each process trains on its share of every batch through
    DistributedDataParallel; `on_epoch_end`, the tracker and the progress bar run on rank 0 only.
    """
    rank, size = distributed.world()
    main = rank == 0
    train_model = distributed.wrap(model)
    progress, on_epoch_end, tracker = (progress, on_epoch_end, tracker) if main else (False, None, None)
    result = resume or FitResult()
    best_state = None
    start = time.perf_counter()
    first = len(result.history)
    # With a time budget the bar counts the epochs the budget will allow (unknown until one epoch is timed), so
    # neither its total nor its ETA comes from an `epochs` the budget never reaches.
    bar = progress_bar(desc="train" if max_seconds is None else f"train, {max_seconds:g} s budget", unit="epoch",
                       total=epochs if max_seconds is None else None, disable=not progress, per_step=True,
                       leave=False, initial=first)
    for epoch in range(first, epochs):
        train_loss = _train_epoch(train_model, step, optimizer, train_batches(epoch), grad_clip, epoch, rank, size)
        val_loss = evaluate_loss(model, step, val_batches(), epoch) if val_batches else train_loss
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
        if val_metrics:
            record.update(val_metrics(model))
        record["seconds"] = time.perf_counter() - start
        result.history.append(record)
        if tracker is not None:
            tracker.log_metrics(record, step=epoch)
        if monitor not in record:
            raise ValueError(f"monitor {monitor!r} is not in the epoch record ({', '.join(record)})")
        improved = record[monitor] < result.best_val_loss
        if improved:
            result.best_val_loss, result.best_epoch = record[monitor], epoch
            best_state = copy.deepcopy(model.state_dict())
        if on_epoch_end:
            on_epoch_end(record, improved)
        if max_seconds is not None:
            bar.total = expected_epochs(epochs, first, epoch + 1, record["seconds"], max_seconds)
        # Epochs are counted from 1 wherever people read them (bars, printed lines, results.json).
        bar.set_postfix(epoch_postfix(record, monitor, has_val_loss=bool(val_batches))
                        | {"best": result.best_epoch + 1}, refresh=False)
        bar.update(1)
        if patience is not None and epoch - result.best_epoch >= patience:
            result.stopped = "early stopping"  # every process sees the same validation: no need to agree
            break
        if distributed.any_across(max_seconds is not None and record["seconds"] >= max_seconds):
            result.stopped = "time budget"
            break
    bar.close()
    if size > 1:
        torch.distributed.barrier()  # rank 0's last checkpoint is written before anyone reads it
        # DistributedDataParallel sits in reference cycles: left to the collector it can outlive the interpreter,
        # and its process group's worker threads then abort the process during shutdown. Free it now.
        del train_model
        gc.collect()
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    return result


def expected_epochs(epochs: int, first: int, done: int, seconds: float, max_seconds: float) -> int:
    """How many epochs a run will have after `done` of them (`first` before this call, which took `seconds`):
    all `epochs`, or fewer when the time budget ends it first (after the first epoch ending past the budget)."""
    per_epoch = seconds / max(done - first, 1)
    if per_epoch <= 0:
        return epochs
    return min(epochs, max(done, first + math.ceil(max_seconds / per_epoch)))


def _train_epoch(model: nn.Module, step: StepFn, optimizer: torch.optim.Optimizer, batches: Iterable[Any],
                 grad_clip: float | None, epoch: int, rank: int = 0, size: int = 1) -> float:
    model.train()
    total, count = 0.0, 0
    for index, batch in enumerate(batches):
        if size > 1:
            if (batch_length(batch) or 0) < size:
                continue  # too few samples to give every process one (every process skips it)
            batch = shard(batch, rank, size)
        optimizer.zero_grad(set_to_none=True)
        loss = step(model, batch)
        if distributed.any_across(not torch.isfinite(loss)) if size > 1 else not torch.isfinite(loss):
            raise DlspError(f"training stopped: non-finite loss {loss.item()} at epoch {epoch + 1}, batch {index + 1}"
                            + (f" (in one of {size} processes)" if size > 1 else ""))
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total, count = total + loss.item(), count + 1
    if count == 0:
        raise DlspError("no training batches (is the training set empty?)")
    return distributed.mean_across(total / count)


@torch.no_grad()
def epoch_postfix(record: dict[str, Any], monitor: str, has_val_loss: bool) -> dict[str, str]:
    """What the bar shows of an epoch: the training loss, the validation loss when there is one (without
    validation batches `val_loss` only repeats the training loss) and the figure that picks the best epoch."""
    shown = {"train": f"{record['train_loss']:.4g}"}
    if has_val_loss:
        shown["val"] = f"{record['val_loss']:.4g}"
    if monitor not in ("train_loss", "val_loss"):
        shown[monitor] = f"{record[monitor]:.4g}"
    return shown


def evaluate_loss(model: nn.Module, step: StepFn, batches: Iterable[Any], epoch: int | None = None) -> float:
    """Mean of `step` over `batches` in eval mode without gradients.

    A non-finite loss raises `DlspError` naming the batch (and `epoch`, an index; both are counted from 1 in the
    message): a diverged model must not be compared, saved or trained on as if its score were merely bad.
    """
    model.eval()
    losses = []
    for index, batch in enumerate(batches):
        loss = step(model, batch).item()
        if not math.isfinite(loss):
            where = f"epoch {epoch + 1}, " if epoch is not None else ""
            raise DlspError(f"training stopped: non-finite validation loss {loss} at {where}validation batch "
                            f"{index + 1}")
        losses.append(loss)
    if not losses:
        raise DlspError("no validation batches (is the validation set empty?)")
    return sum(losses) / len(losses)

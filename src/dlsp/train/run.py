"""The run engine: every task trains into its run folder through `train_in_folder`, which calls `fit`.

The engine owns the run folder, the same for `dlsp <task> train`, `dlsp run` and `dlsp tune`'s trials: the rule
for an existing folder (`dlsp.train.run_folder.check_run_folder`); `config.yaml` (rewritten on resuming, so the
overrides given then are recorded, and what they change is warned about) and `splits.json` when a run starts;
`metrics.jsonl`, `best.pt` and `last.pt` after every epoch; `results.json` at the end (`best_epoch` counted from
1, `epochs`, `stopped` and the task's figures); the tracker (`dlsp.train.tracking`); under torchrun, writing from
rank 0 only. A task supplies what differs as a `Training`, built by its `setup(device)`: the module to train, its
optimiser, step and batches, the validation figures, how to save its model file and what to add when training
ends. With `train.average_last: N` the model that ships is the mean of the last N epochs' weights
(`dlsp.train.averaging`), scored on the validation data like an epoch (`results.json` keeps the best single
epoch's figure beside it).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlsp.config import config_changes, load_recipe, save_config, to_dict
from dlsp.device import resolve_device
from dlsp.errors import DlspError
from dlsp.fileio import ensure_dir, write_json
from dlsp.train.averaging import RunningAverage, averaging_start
from dlsp.train.distributed import is_main
from dlsp.train.loop import FitResult, StepFn, evaluate_loss, fit
from dlsp.train.run_folder import (
    INPUTS,
    append_metrics,
    check_run_folder,
    clear_run_files,
    resume_state,
    save_resume_state,
)
from dlsp.train.tracking import Tracker, tracked_run


@dataclass(frozen=True)
class TrainSection:
    """The `train:` keys of every task; each task's section extends it (its own defaults and keys)."""

    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 30
    patience: int | None = None
    max_seconds: float | None = None
    seed: int = 0
    device: str = "auto"
    # Ship the mean of the last N epochs' weights instead of the best single epoch (0: off; dlsp.train.averaging).
    # If fewer than 2 of those epochs run (early stopping, time budget), the best single epoch ships.
    average_last: int = 0


def make_optimizer(params: Iterable[Any], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser every training uses: Adam (`params` may be groups with their own `lr`)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@dataclass
class Training:
    """What one task trains, as `train_in_folder` runs it."""

    model: nn.Module  # what trains (with its loss head, if any) and what last.pt holds
    optimizer: torch.optim.Optimizer
    step: StepFn
    train_batches: Callable[[int], Iterable[Any]]
    save_best: Callable[[dict[str, float]], None]  # write best.pt (`model` holds the weights of this epoch record)
    # Rank 0, once trained: (best model, best epoch's record) -> the task's figures for results.json (it may write
    # its curves and other files too).
    finish: Callable[[nn.Module, FitResult, dict[str, float]], dict[str, Any]]
    describe: str  # "training MODEL (N parameters) on DEVICE"
    val_batches: Callable[[], Iterable[Any]] | None = None
    val_metrics: Callable[[nn.Module], dict[str, float]] | None = None
    monitor: str = "val_loss"
    # The best epoch's model read back from best.pt (after a resume the weights in memory may be a later epoch's);
    # without it, `model`.
    load_best: Callable[[], nn.Module] | None = None


def resumed_config_changes(out: Path, config: Any) -> list[str]:
    """What differs between the config a run was started (or last resumed) with, its `config.yaml`, and
    `config`: a recipe or --set given on resuming replaces the run's own settings, which should not go unsaid."""
    path = out / "config.yaml"
    if not path.is_file():
        return []
    try:
        saved = load_recipe(path)
    except DlspError:
        return ["config.yaml could not be read, so the changes are unknown"]
    return config_changes(saved, to_dict(config))


def train_in_folder(out: str | os.PathLike[str], config: Any, setup: Callable[[torch.device], Training], *,
                    splits: Any, artifacts: Sequence[str] = (), resume: bool = False, overwrite: bool = False,
                    progress: bool = True, log: Callable[[str], None] = print,
                    tracker: Tracker | None = None, inputs: dict[str, Any] | None = None,
                    ) -> tuple[nn.Module, FitResult, dict[str, Any] | None]:
    """Train `config` (its `train` section: a `TrainSection` with `grad_clip`) into the run folder `out`.

    `setup(device)` builds the task's `Training`; `splits` goes to `splits.json`; `artifacts` name the task's own
    run files (glob patterns): a new run removes the previous run's, and the tracker receives them. `inputs` (the
    data locations the command was given) go to `inputs.json`, so `--resume` without them finds them again
    (`dlsp.train.run_folder.saved_inputs`). `resume` continues from `out/last.pt`; `overwrite` starts over in a
    folder that holds something (else refused).
    `tracker` (`dlsp.train.tracking.make_tracker`) also receives the config, every epoch's metrics, the results and
    the run's files; it is finished here, as failed if training raises.

    Returns the best model (eval mode), the fit result and what results.json holds (None on ranks other than 0).
    """
    check_run_folder(out, resume, overwrite)
    out = Path(out)

    def run(tracker: Tracker) -> tuple[nn.Module, FitResult, dict[str, Any] | None]:
        ensure_dir(out)
        tracker.log_params(to_dict(config))
        training = setup(resolve_device(config.train.device))
        start = averaging_start(config.train.epochs, config.train.average_last)
        average = None if start is None else RunningAverage(start)
        # The optimiser's state comes back from last.pt, but its learning rates come from the config, so a
        # `--set train.lr=...` given on resuming (recorded in config.yaml below) takes effect.
        resumed = None
        if resume:
            rates = [group["lr"] for group in training.optimizer.param_groups]
            resumed = resume_state(out, training.model, training.optimizer, average)
            for group, lr in zip(training.optimizer.param_groups, rates, strict=True):
                group["lr"] = lr
        if resumed is not None and is_main():
            changed = resumed_config_changes(out, config)
            if changed:  # a warning, so it is said even when the log is silenced (`dlsp run`)
                warnings.warn("resuming with a config that differs from the run's (config.yaml now records the new "
                              "one): " + "; ".join(changed), stacklevel=2)
        if is_main():  # under torchrun, one process writes the run folder
            if resumed is None:
                clear_run_files(out, artifacts)
                write_json(out / "splits.json", splits)
                if inputs:
                    write_json(out / INPUTS, inputs)
            save_config(out / "config.yaml", config)
        log(training.describe + (f", resuming after epoch {len(resumed.history)}" if resumed else ""))
        so_far = resumed or FitResult()

        def on_epoch_end(record: dict[str, float], improved: bool) -> None:
            append_metrics(out, record)
            if improved:
                training.save_best(record)
            if average is not None:
                average.update(training.model, int(record["epoch"]))
            save_resume_state(out, training.model, training.optimizer, so_far, average)

        train = config.train
        result = fit(training.model, training.step, training.optimizer, training.train_batches,
                     training.val_batches, epochs=train.epochs, patience=train.patience,
                     max_seconds=train.max_seconds, grad_clip=train.grad_clip, progress=progress,
                     on_epoch_end=on_epoch_end, resume=so_far, val_metrics=training.val_metrics,
                     monitor=training.monitor, tracker=tracker)
        if not is_main():
            return (training.load_best() if training.load_best else training.model).eval(), result, None
        record = result.history[result.best_epoch] if result.history else {}
        averaged = {}
        if average is not None and average.count >= 2:
            record = result.averaged = averaged_record(training, average, result)
            training.save_best(record)
            averaged = {"averaged_epochs": record["averaged_epochs"],
                        f"best_single_epoch_{training.monitor}": result.best_val_loss}
            scored = (f"{training.monitor} {record[training.monitor]:.4g} (best single epoch, "
                      f"{result.best_epoch + 1}: {result.best_val_loss:.4g})" if training.monitor in record
                      else "not validated (no validation data)")
            log(f"shipping the mean of epochs {average.epochs[0] + 1}-{average.epochs[-1] + 1}: {scored}")
        best = (training.load_best() if training.load_best else training.model).eval()
        results = {"best_epoch": result.best_epoch + 1, "epochs": len(result.history), "stopped": result.stopped,
                   **averaged, **training.finish(best, result, record)}
        write_json(out / "results.json", results)
        return best, result, results

    return tracked_run(tracker, run, out, ("best.pt", "config.yaml", "results.json", *artifacts),
                       lambda value: value[2])


def averaged_record(training: Training, average: RunningAverage, result: FitResult) -> dict[str, Any]:
    """Load the averaged weights into `training.model` and score them as an epoch is scored: the record of the
    last averaged epoch with its validation figures replaced by the average's."""
    average.load_into(training.model)
    record = dict(result.history[average.epochs[-1]])
    record.pop("train_loss")  # that epoch's; the average was never trained on
    if training.val_batches is None:
        record.pop("val_loss")  # without validation batches it only repeated the training loss
    else:
        record["val_loss"] = evaluate_loss(training.model, training.step, training.val_batches())
    if training.val_metrics is not None:
        record.update(training.val_metrics(training.model))
    record["averaged_epochs"] = [average.epochs[0] + 1, average.epochs[-1] + 1]
    return record

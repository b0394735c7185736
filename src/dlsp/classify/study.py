"""The optimisation study: full-batch, mini-batch and stochastic (batch 1) gradient descent, same time budget.

The same model, from the same initial weights, is trained once per method for the same wall-clock budget; the
history of each (training loss, validation accuracy, seconds) is plotted against passes over the training data
and against seconds. Validation runs ten times per pass, so even the slow batch-1 passes give a curve, and
training stops at the budget in the middle of a pass (no method overruns it by a whole epoch). Plain SGD is the
default optimiser so that the methods differ only in how many examples each step sees; Adam can be chosen instead.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlsp.classify.train import (
    BatchMaker,
    ClassifyConfig,
    ClassifyData,
    build_model,
    make_step,
    validation_scores,
)
from dlsp.device import resolve_device
from dlsp.errors import DlspError
from dlsp.fileio import ensure_dir, write_json, write_text
from dlsp.train.loop import fit
from dlsp.train.run import make_optimizer

OPTIMIZERS = ("sgd", "adam")


@dataclass
class StudyResult:
    """Per-method histories and the summary table rows."""

    histories: dict[str, list[dict[str, float]]]
    rows: list[list[Any]]
    headers: tuple[str, ...] = ("method", "batch", "epochs (passes)", "updates", "seconds", "final train loss",
                                "best val accuracy")


def study_methods(n_train: int, mini_batch: int) -> dict[str, int]:
    """Method name -> batch size."""
    return {"full-batch GD": n_train, f"mini-batch GD ({mini_batch})": mini_batch, "stochastic GD (batch 1)": 1}


def study_optimizers(config: ClassifyConfig, data: ClassifyData, seconds: float, optimizer: str = "sgd",
                     lr: float | None = None, progress: bool = True, evals_per_epoch: int = 10,
                     log: Callable[[str], None] = print) -> StudyResult:
    """Train the configured model with each method for `seconds` of wall-clock time each.

    Validation runs `evals_per_epoch` times per pass over the training data (once per step for full-batch
    descent); each history record holds `passes`, the passes over the training data so far.
    """
    if optimizer not in OPTIMIZERS:
        raise DlspError(f"unknown optimizer {optimizer!r} (valid: {', '.join(OPTIMIZERS)})")
    if not seconds > 0:
        raise DlspError(f"the time budget must be positive, got {seconds}")
    device = resolve_device(config.train.device)
    initial = build_model(config, data).to(device)
    val = data.sets["val"] if len(data.sets["val"]) else data.sets["train"]
    x_val, y_val = val.segments()
    val_batches = [(x_val[i:i + 512], y_val[i:i + 512]) for i in range(0, len(y_val), 512)]
    n_train = len(data.sets["train"].segments()[1])
    step = make_step(device)
    histories, rows = {}, []
    for name, batch_size in study_methods(n_train, config.train.batch_size).items():
        model = copy.deepcopy(initial)
        rate = lr if lr is not None else (config.train.lr if optimizer == "adam" else 0.01)
        opt = (torch.optim.SGD(model.parameters(), lr=rate) if optimizer == "sgd"
               else make_optimizer(model.parameters(), rate))
        batches = BatchMaker(data, config, model.mean.detach().cpu())
        log(f"{name}: batch {batch_size}, {optimizer} lr {rate:g}, {seconds:g} s")
        # fit's "epochs" are rounds of about 1/evals_per_epoch of a pass, so slow passes still give curves.
        stream = _endless(batches, batch_size)
        steps = max(1, math.ceil(n_train / batch_size / evals_per_epoch))
        deadline, updates = time.perf_counter() + seconds, [0]

        def train_batches(epoch: int, source: Iterator = stream, n: int = steps, end: float = deadline,
                          count: list[int] = updates) -> Iterator:
            return _until(end, itertools.islice(source, n), count)

        def passes(record: dict[str, float], improved: bool, b: int = batch_size, count: list[int] = updates) -> None:
            record["passes"] = count[0] * b / n_train

        result = fit(model, step, opt, train_batches=train_batches,
                     val_batches=lambda: iter(val_batches), epochs=1_000_000, patience=None, max_seconds=seconds,
                     progress=progress, on_epoch_end=passes,
                     val_metrics=lambda m: validation_scores(m, val, data.labels, device))
        histories[name] = result.history
        rows.append([name, batch_size, result.history[-1]["passes"], updates[0], result.seconds,
                     result.history[-1]["train_loss"], max(h["val_accuracy"] for h in result.history)])
    return StudyResult(histories, rows)


def _endless(batches: BatchMaker, batch_size: int) -> Iterator:
    """Batches of epoch 0, then epoch 1, ... without end."""
    for epoch in itertools.count():
        yield from batches(epoch, batch_size)


def _until(deadline: float, batches: Iterator, count: list[int]) -> Iterator:
    """Stop an epoch's batches at the deadline (after at least one), so that slow epochs keep to the budget;
    `count[0]` counts the batches given out."""
    for index, batch in enumerate(batches):
        if index and time.perf_counter() >= deadline:
            return
        count[0] += 1
        yield batch


def write_study(out: str | os.PathLike[str], study: StudyResult, title: str = "") -> dict[str, Path]:
    """`optimizers.png` (loss and accuracy against epochs and seconds), `optimizers.md` and `optimizers.json`."""
    from dlsp.classify.plots import optimizer_study_plot
    from dlsp.report.tables import format_table

    out = ensure_dir(out)
    plot = optimizer_study_plot(out / "optimizers.png", study.histories, title)
    table = write_text(out / "optimizers.md", format_table(study.headers, study.rows, markdown=True) + "\n")
    data = write_json(out / "optimizers.json", {"histories": study.histories,
                                                "table": [dict(zip(study.headers, r, strict=True))
                                                          for r in study.rows]})
    return {"plot": plot, "table": table, "json": data}

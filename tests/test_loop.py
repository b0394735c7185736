"""dlsp.train.loop: best weights restored, early stopping, time budget, non-finite losses."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.train.loop import epoch_postfix, expected_epochs, fit


def _regression():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1)

    def step(model, batch):
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    return model, step, [(x, y)]


def test_fit_learns_and_keeps_best_epoch():
    model, step, batches = _regression()
    result = fit(model, step, torch.optim.Adam(model.parameters(), lr=0.1), lambda e: batches, lambda: batches,
                 epochs=100, progress=False)
    assert result.best_val_loss < 1e-3
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)
    with torch.no_grad():
        assert step(model, batches[0]).item() == pytest.approx(result.best_val_loss, rel=1e-5)


def test_same_seed_same_losses():
    runs = []
    for _ in range(2):
        model, step, batches = _regression()
        result = fit(model, step, torch.optim.SGD(model.parameters(), lr=0.05), lambda e, b=batches: b,
                     epochs=5, progress=False)
        runs.append([h["train_loss"] for h in result.history])
    assert runs[0] == runs[1]


def test_early_stopping_and_time_budget():
    model, step, batches = _regression()
    # lr 0 never improves after the first epoch.
    result = fit(model, step, torch.optim.SGD(model.parameters(), lr=0.0), lambda e: batches, lambda: batches,
                 epochs=50, patience=3, progress=False)
    assert result.stopped == "early stopping" and len(result.history) == 4
    result = fit(model, step, torch.optim.SGD(model.parameters(), lr=0.0), lambda e: batches, epochs=50,
                 max_seconds=0.0, progress=False)
    assert result.stopped == "time budget" and len(result.history) == 1


def test_non_finite_loss_names_the_batch():
    model, step, batches = _regression()
    bad = [batches[0], (batches[0][0], batches[0][1] * float("nan"))]
    with pytest.raises(DlspError, match=r"non-finite loss .* epoch 1, batch 2"):
        fit(model, step, torch.optim.SGD(model.parameters(), lr=0.01), lambda e: bad, epochs=1, progress=False)


def _clocked(monkeypatch, seconds_per_epoch: float):
    """A fake clock for `fit` that advances `seconds_per_epoch` per (single-batch) training epoch."""
    from types import SimpleNamespace

    from dlsp.train import loop

    clock = {"now": 0.0}
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))
    model, step, batches = _regression()

    def timed_step(model, batch):
        if model.training:
            clock["now"] += seconds_per_epoch
        return step(model, batch)

    return model, timed_step, batches


def test_a_time_budget_bar_counts_the_epochs_the_budget_allows(monkeypatch, capsys):
    # 10000 epochs of 1 s with a 4.5 s budget: 5 epochs run (the fifth ends past the budget), so the bar says
    # n/5 from the first timed epoch, never n/10000 (whose ETA would be hours).
    model, step, batches = _clocked(monkeypatch, 1.0)
    result = fit(model, step, torch.optim.SGD(model.parameters(), lr=0.01), lambda e: batches, epochs=10_000,
                 max_seconds=4.5)
    assert result.stopped == "time budget" and len(result.history) == 5
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 5 and "10000" not in err and "\r" not in err  # stderr is not a terminal here
    assert [re.search(r"(\d+/\d+) epoch", line).group(1) for line in lines] == [f"{n}/5" for n in range(1, 6)]
    assert lines[0].startswith("train, 4.5 s budget: 1/5 epoch, train=")
    # Without a budget the total is the epoch limit; best is counted from 1, like everywhere people read it.
    model, step, batches = _regression()
    result = fit(model, step, torch.optim.SGD(model.parameters(), lr=0.0), lambda e: batches, epochs=2)
    lines = capsys.readouterr().err.splitlines()
    assert result.best_epoch == 0 and lines[0].startswith("train: 1/2 epoch") and "best=1 [" in lines[1]


def test_the_live_bar_has_the_budget_total_too(monkeypatch):
    from dlsp import progress
    from dlsp.train import loop

    bars = []

    def spy(*args, **kwargs):
        bars.append(progress.progress_bar(*args, **kwargs))
        return bars[-1]

    monkeypatch.setattr(progress, "interactive", lambda: True)  # a terminal: tqdm
    monkeypatch.setattr(loop, "progress_bar", spy)
    model, step, batches = _clocked(monkeypatch, 2.0)
    fit(model, step, torch.optim.SGD(model.parameters(), lr=0.01), lambda e: batches, epochs=10_000, max_seconds=5)
    assert bars[0].total == 3 and bars[0].n == 3  # epochs ending at 2, 4 and 6 s


def test_expected_epochs_under_a_budget():
    assert expected_epochs(10_000, 0, 1, 2.0, 60.0) == 30
    assert expected_epochs(10, 0, 1, 2.0, 60.0) == 10  # the epoch limit comes first
    assert expected_epochs(100, 4, 6, 10.0, 12.0) == 7  # resumed after 4 epochs: 5 s each, 12 s budget
    assert expected_epochs(100, 0, 3, 61.0, 60.0) == 3  # past the budget: this epoch was the last


def test_quiet_training_prints_nothing(capsys):
    model, step, batches = _regression()
    fit(model, step, torch.optim.SGD(model.parameters(), lr=0.01), lambda e: batches, epochs=3, progress=False)
    assert capsys.readouterr().err == ""


def test_bar_shows_validation_loss_only_when_there_is_one_and_the_figure_that_picks_the_best_epoch():
    record = {"epoch": 3, "train_loss": 0.51234, "val_loss": 0.51234, "val_eer": 0.08}
    # Speaker training validates by EER, with no validation batches: val_loss only repeats the training loss.
    assert epoch_postfix(record, "val_eer", has_val_loss=False) == {"train": "0.5123", "val_eer": "0.08"}
    record["val_loss"] = 0.6
    assert epoch_postfix(record, "val_loss", has_val_loss=True) == {"train": "0.5123", "val": "0.6"}

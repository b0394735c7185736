"""dlsp.train.loop: best weights restored, early stopping, time budget, non-finite losses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.train.loop import fit


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
    with pytest.raises(DlspError, match=r"non-finite loss .* epoch 0, batch 1"):
        fit(model, step, torch.optim.SGD(model.parameters(), lr=0.01), lambda e: bad, epochs=1, progress=False)

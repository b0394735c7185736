"""dlsp.train.averaging: the running mean of the last epochs' weights, and the run engine shipping it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.train.averaging import RunningAverage, averaging_start
from dlsp.train.run import Training, TrainSection, make_optimizer, train_in_folder


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.register_buffer("steps", torch.tensor(0))


def with_weights(value: float, steps: int) -> Tiny:
    model = Tiny()
    with torch.no_grad():
        model.linear.weight.fill_(value)
        model.linear.bias.fill_(-value)
    model.steps.fill_(steps)
    return model


def test_running_mean_from_the_start_epoch_with_the_latest_counter():
    average = RunningAverage(start=2)
    for epoch, value in enumerate([100.0, 50.0, 1.0, 2.0, 6.0]):
        average.update(with_weights(value, epoch), epoch)
    assert average.epochs == [2, 3, 4] and average.count == 3
    model = with_weights(0.0, 0)
    average.load_into(model)
    assert torch.allclose(model.linear.weight, torch.full((1, 3), 3.0))  # (1 + 2 + 6) / 3
    assert torch.allclose(model.linear.bias, torch.tensor([-3.0]))
    assert model.steps.item() == 4 and model.linear.weight.dtype == torch.float32


def test_a_restored_average_continues_as_if_never_interrupted():
    whole, first = RunningAverage(0), RunningAverage(0)
    for epoch, value in enumerate([1.0, 2.0, 4.0]):
        whole.update(with_weights(value, epoch), epoch)
        if epoch < 2:
            first.update(with_weights(value, epoch), epoch)
    second = RunningAverage(0)
    second.restore(first.state())
    second.update(with_weights(4.0, 2), 2)
    assert second.epochs == whole.epochs
    assert all(torch.equal(second.mean[k], whole.mean[k]) for k in whole.mean)
    with pytest.raises(DlspError, match="averages from epoch 1, this run from 3"):
        RunningAverage(2).restore(first.state())
    with pytest.raises(ValueError, match="no epoch"):
        RunningAverage(0).load_into(Tiny())


def test_averaging_start_counts_back_from_the_last_epoch():
    assert averaging_start(30, 10) == 20 and averaging_start(5, 10) == 0
    assert averaging_start(30, 0) is None and averaging_start(30, 1) is None
    with pytest.raises(DlspError, match="average_last"):
        averaging_start(30, -1)


@dataclass(frozen=True)
class TinyTrain(TrainSection):
    grad_clip: float | None = None


@dataclass(frozen=True)
class TinyConfig:
    train: TinyTrain = field(default_factory=lambda: TinyTrain(epochs=5, average_last=3, device="cpu",
                                                              patience=None))


def tiny_training(seen: list[torch.Tensor], saved: list[tuple[torch.Tensor, dict]], fail_at: int | None = None):
    """A regression whose validation hook keeps a copy of the weights it is shown (after each epoch, then the
    average's), and whose best.pt is a list of (weights, record)."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(32, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]

    def setup(device):
        torch.manual_seed(0)
        model = Tiny()
        optimizer = make_optimizer(model.parameters(), 0.05)

        def train_batches(epoch):
            if epoch == fail_at:
                raise KeyboardInterrupt
            return batches

        def val_metrics(m):
            seen.append(torch.cat([m.linear.weight.flatten(), m.linear.bias]).detach().clone())
            with torch.no_grad():
                return {"val_error": float(torch.mean((m.linear(x) - y) ** 2))}

        return Training(model, optimizer, lambda m, b: torch.mean((m.linear(b[0]) - b[1]) ** 2), train_batches,
                        lambda record: saved.append((seen[-1], dict(record))),
                        lambda best, result, record: {"val_error": record["val_error"]}, "tiny",
                        val_metrics=val_metrics, monitor="val_error")

    return setup


def test_the_run_ships_the_mean_of_the_last_epochs_and_resumes_it(tmp_path):
    seen, saved = [], []
    _, result, _ = train_in_folder(tmp_path / "whole", TinyConfig(), tiny_training(seen, saved), splits={},
                                   progress=False, log=lambda line: None)
    per_epoch, shown_average = seen[:5], seen[5]
    assert torch.allclose(shown_average, torch.stack(per_epoch[2:]).mean(0), atol=1e-6)
    shipped, record = saved[-1]
    assert torch.equal(shipped, shown_average) and record["averaged_epochs"] == [3, 5]
    assert result.shipped() == ("mean of epochs 3-5", record)
    results = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert results["averaged_epochs"] == [3, 5] and results["val_error"] == pytest.approx(record["val_error"])
    assert results["best_single_epoch_val_error"] == pytest.approx(min(json.loads(line)["val_error"] for line in
                                                                       (tmp_path / "whole" / "metrics.jsonl")
                                                                       .read_text().splitlines()))

    # Stopped after epoch 4 (the average holds epochs 3 and 4), resumed: the same average is shipped.
    seen_cut, saved_cut = [], []
    with pytest.raises(KeyboardInterrupt):
        train_in_folder(tmp_path / "cut", TinyConfig(), tiny_training(seen_cut, saved_cut, fail_at=4),
                        splits={}, progress=False, log=lambda line: None)
    train_in_folder(tmp_path / "cut", TinyConfig(), tiny_training(seen_cut, saved_cut), splits={}, resume=True,
                    progress=False, log=lambda line: None)
    assert torch.allclose(saved_cut[-1][0], shipped, atol=1e-6)


def test_a_run_that_stops_before_two_averaged_epochs_ships_its_best_epoch(tmp_path):
    seen, saved = [], []
    config = TinyConfig(train=TinyTrain(epochs=5, average_last=3, device="cpu", patience=None, max_seconds=1e-9))
    _, result, results = train_in_folder(tmp_path / "run", config, tiny_training(seen, saved), splits={},
                                         progress=False, log=lambda line: None)
    assert len(result.history) == 1 and result.stopped == "time budget"  # the budget ends it after epoch 1
    assert result.shipped() == ("best epoch 1", result.history[0]) and "averaged_epochs" not in results
    assert len(seen) == 1 and torch.equal(saved[-1][0], seen[0])  # no average was scored or saved

"""dlsp.report.plots: the loss curves pick a scale their values can use."""

from __future__ import annotations

import warnings

from dlsp.report import plots


def _scale_of(path, history, monkeypatch) -> str:
    seen = {}
    original = plots._save

    def spy(plt, fig, target):
        seen["scale"] = fig.axes[0].get_yscale()
        return original(plt, fig, target)

    monkeypatch.setattr(plots, "_save", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when it cannot log-scale
        assert plots.loss_curves(path, history).stat().st_size > 0
    return seen["scale"]


def test_positive_losses_use_a_log_scale(tmp_path, monkeypatch):
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.5 / (e + 1)} for e in range(3)]
    assert _scale_of(tmp_path / "a.png", history, monkeypatch) == "log"


def test_negative_si_sdr_losses_use_a_linear_scale(tmp_path, monkeypatch):
    history = [{"epoch": e, "train_loss": -10.0 - e, "val_loss": -8.0 - e} for e in range(3)]
    assert _scale_of(tmp_path / "b.png", history, monkeypatch) == "linear"

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


def test_a_one_epoch_run_shows_its_points(tmp_path, monkeypatch):
    # A bare line through one point draws nothing: the curves carry markers while there are few epochs.
    seen = {}
    original = plots._save

    def spy(plt, fig, target):
        seen["lines"] = [(line.get_marker(), len(line.get_xdata())) for line in fig.axes[0].get_lines()]
        return original(plt, fig, target)

    monkeypatch.setattr(plots, "_save", spy)
    plots.loss_curves(tmp_path / "one.png", [{"epoch": 0, "train_loss": 0.5, "val_loss": 0.6}])
    assert seen["lines"] == [("o", 1), ("o", 1)]
    plots.loss_curves(tmp_path / "many.png", [{"epoch": e, "train_loss": 1.0, "val_loss": 1.0} for e in range(200)])
    assert [marker for marker, _ in seen["lines"]] == ["None", "None"]  # dense curves stay plain lines


def test_classifier_curves_of_one_epoch_show_their_points(tmp_path, monkeypatch):
    from dlsp.classify import plots as classify_plots

    seen = {}
    original = classify_plots._save

    def spy(plt, fig, target):
        seen["markers"] = [line.get_marker() for ax in fig.axes for line in ax.get_lines()]
        return original(plt, fig, target)

    monkeypatch.setattr(classify_plots, "_save", spy)
    classify_plots.training_curves(tmp_path / "c.png", [{"epoch": 0, "train_loss": 0.5, "val_loss": 0.6,
                                                         "val_accuracy": 0.7, "val_clip_accuracy": 0.8}])
    assert seen["markers"] == ["o"] * 4

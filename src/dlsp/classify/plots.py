"""PNG plots of classifier training: loss and accuracy curves, and the optimiser study's four panels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dlsp.fileio import atomic_path
from dlsp.report.plots import curve_marker


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | os.PathLike[str]) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def training_curves(path: str | os.PathLike[str], history: Sequence[dict[str, float]], title: str = "") -> Path:
    """Loss (train, validation) and validation accuracy (segment, clip) against epochs, side by side."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    epochs = [h["epoch"] + 1 for h in history]
    style = {"marker": curve_marker(len(epochs)), "markersize": 3}  # a one-epoch run still shows its point
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_ax.plot(epochs, [h[key] for h in history], label=label, **style)
    for key, label in (("val_accuracy", "segments"), ("val_clip_accuracy", "clips")):
        if history and key in history[0]:
            acc_ax.plot(epochs, [h[key] for h in history], label=label, **style)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1.02), title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _save(plt, fig, path)


def optimizer_study_plot(path: str | os.PathLike[str], histories: dict[str, Sequence[dict[str, float]]],
                         title: str = "") -> Path:
    """Training loss and validation accuracy of each method against epochs and against seconds (2 x 2)."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), layout="constrained")
    for name, history in histories.items():
        epochs = [h.get("passes", h["epoch"] + 1) for h in history]
        seconds = [h["seconds"] for h in history]
        marker = "." if len(history) <= 60 else None  # dots show sparse evaluations, clutter dense ones
        for row, key in enumerate(("train_loss", "val_accuracy")):
            axes[row, 0].plot(epochs, [h[key] for h in history], marker=marker, label=name)
            axes[row, 1].plot(seconds, [h[key] for h in history], marker=marker, label=name)
    for col, xlabel in enumerate(("epochs (passes over the training data)", "seconds")):
        axes[0, col].set(xlabel=xlabel, ylabel="training loss", yscale="log")
        axes[1, col].set(xlabel=xlabel, ylabel="validation accuracy", ylim=(0, 1.02))
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _save(plt, fig, path)

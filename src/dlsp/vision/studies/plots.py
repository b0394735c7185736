"""The vision studies' figures, written atomically as PNGs (non-interactive backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dlsp.report.plots import _figure, _save


def _show(ax, image: np.ndarray) -> None:
    # (channels, h, w) in [0, 1] -> greyscale or RGB.
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])


def best_examples(path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                  classes: Sequence[str]) -> tuple[Path, dict[str, float | None]]:
    """The most confident correct example of every class; returns the path and each class's confidence."""
    plt, fig, axes = _figure(1, len(classes), (1.3 * len(classes), 1.7))
    predicted = probs.argmax(1)
    confidences: dict[str, float | None] = {}
    for index, name in enumerate(classes):
        ax = axes[0, index]
        candidates = np.flatnonzero((labels == index) & (predicted == index))
        if len(candidates) == 0:
            confidences[name] = None
            ax.axis("off")
            ax.set_title(f"{name}: none", fontsize=8)
            continue
        best = candidates[np.argmax(probs[candidates, index])]
        confidences[name] = float(probs[best, index])
        _show(ax, images[best])
        ax.set_title(f"{name}\np={probs[best, index]:.4f}", fontsize=8)
    fig.suptitle("most confident correct test example per class")
    return _save(plt, fig, path), confidences


def embedding_panels(path: str | os.PathLike[str], panels: Sequence[tuple[str, np.ndarray]], labels: np.ndarray,
                     title: str) -> Path:
    """One 2-D scatter per layer (`(name, (n, 2) coordinates)`), points coloured by class."""
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    plt, fig, axes = _figure(rows, cols, (3.2 * cols, 3.0 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, coords) in zip(axes.ravel(), panels, strict=False):
        ax.axis("on")
        scatter = ax.scatter(coords[:, 0], coords[:, 1], c=labels, cmap="tab10", s=3, vmin=-0.5, vmax=9.5)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(scatter, ax=axes.ravel().tolist(), ticks=range(10), shrink=0.6, label="class")
    fig.suptitle(title)
    return _save(plt, fig, path)


def accuracy_curves(path: str | os.PathLike[str], curves: dict[str, tuple[Sequence[int], Sequence[float]]],
                    title: str, ylabel: str = "validation accuracy") -> Path:
    """Accuracy against epochs, one line per labelled curve."""
    plt, fig, axes = _figure(1, 1, (6.5, 3.8))
    ax = axes[0, 0]
    for label, (epochs, values) in curves.items():
        ax.plot(epochs, values, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def accuracy_vs_rank(path: str | os.PathLike[str], ranks: Sequence[str],
                     series: dict[str, Sequence[float | None]], title: str) -> Path:
    """Test accuracy against the factorisation rank (categorical axis: 5, 10, ..., full)."""
    plt, fig, axes = _figure(1, 1, (6.5, 3.8))
    ax = axes[0, 0]
    positions = np.arange(len(ranks))
    for label, values in series.items():
        points = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
        ax.plot([p for p, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_xticks(positions, list(ranks))
    ax.set_xlabel("rank D of every factorised layer")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def image_grid(path: str | os.PathLike[str], rows: Sequence[tuple[str, np.ndarray]], title: str) -> Path:
    """Rows of images (`(row label, (k, channels, h, w))`), e.g. the augmentation views of a few images."""
    cols = max(len(images) for _, images in rows)
    plt, fig, axes = _figure(len(rows), cols, (1.3 * cols + 1, 1.3 * len(rows)))
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            if c < len(images):
                _show(ax, images[c])
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title)
    return _save(plt, fig, path)

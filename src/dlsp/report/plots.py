"""PNG plots, written atomically with a non-interactive backend (no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dlsp.fileio import atomic_path


def _figure(rows: int, cols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(rows, cols, figsize=size, squeeze=False, layout="constrained")


def _save(plt, fig, path: str | os.PathLike[str]) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def spectrogram_panels(
    path: str | os.PathLike[str],
    signals: Sequence[tuple[str, np.ndarray]],
    sample_rate: int,
    n_fft: int = 512,
    hop_length: int = 128,
    top_db: float = 80.0,
) -> Path:
    """One spectrogram (dB, shared colour scale) per `(title, audio)`, stacked vertically."""
    import torch

    from dlsp.audio.stft import stft

    plt, fig, axes = _figure(len(signals), 1, (9, 2.4 * len(signals)))
    specs = [20 * np.log10(stft(torch.from_numpy(x), n_fft, hop_length).abs().numpy() + 1e-8) for _, x in signals]
    vmax = max(float(s.max()) for s in specs)
    for ax, (title, audio), spec in zip(axes[:, 0], signals, specs, strict=True):
        extent = (0, len(audio) / sample_rate, 0, sample_rate / 2000)
        image = ax.imshow(spec, origin="lower", aspect="auto", extent=extent, vmin=vmax - top_db, vmax=vmax,
                          cmap="magma")
        ax.set_title(title)
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("seconds")
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="dB", shrink=0.8, aspect=30)
    return _save(plt, fig, path)


def curve_marker(points: int) -> str | None:
    """A marker for curves of `points` epochs: a one-epoch run is a single point, invisible as a bare line; dots
    also show where sparse epochs lie, and would only clutter dense curves."""
    return "o" if points <= 60 else None


def loss_curves(path: str | os.PathLike[str], history: Sequence[dict[str, float]], title: str = "") -> Path:
    """Training and validation loss against epochs (log scale, unless a loss is not positive: a negative SI-SDR
    loss is plotted on a linear scale)."""
    plt, fig, axes = _figure(1, 1, (6, 3.5))
    ax = axes[0, 0]
    epochs = [h["epoch"] + 1 for h in history]
    values = []
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values += [h[key] for h in history if h.get(key) is not None]
        ax.plot(epochs, [h.get(key, np.nan) for h in history], label=label, marker=curve_marker(len(epochs)),
                markersize=3)
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)

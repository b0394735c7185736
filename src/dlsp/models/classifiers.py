"""Clip classifiers on MFCC segments: the genre study's MLP, CNN and LSTM as presets, with room to grow.

Every model takes MFCCs `(batch, n_mfcc, frames)` and returns class logits `(batch, n_classes)`. Inputs are
standardised per coefficient with statistics stored as buffers (`fit_normalizer` on the training set), so a
checkpoint carries everything needed to run it. Every model reports `get_model_args()` for checkpoints.

Presets (the defaults of each class are the study's architecture):

- `mlp`: flatten -> 512 -> 256 -> 64 -> classes, ReLU.
- `cnn`: Conv2D(32, 3x3) -> MaxPool(3x3, stride 2, same) -> Conv2D(64, 3x3) -> MaxPool -> Conv2D(128, 2x2) ->
  flatten -> Dense(64) -> Dropout(0.1) -> classes (Keras "valid" convolutions on a frames x n_mfcc image).
  `channels`, `batch_norm` and `dropout` give wider, batch-normalised variants.
- `lstm`: LSTM(64, sequences) -> LSTM(64) -> Dense(64) -> Dropout(0.3) -> classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError

LSTM_POOLS = ("last", "mean")


class MfccClassifier(nn.Module):
    """Base class: per-coefficient standardisation buffers and the arguments needed to rebuild the model."""

    def __init__(self, n_mfcc: int, frames: int, n_classes: int) -> None:
        super().__init__()
        if n_mfcc < 1 or frames < 1:
            raise DlspError(f"classifier input must have n_mfcc >= 1 and frames >= 1, got {n_mfcc} x {frames}")
        if n_classes < 2:
            raise DlspError(f"a classifier needs at least 2 classes, got {n_classes}")
        self.n_mfcc, self.frames, self.n_classes = n_mfcc, frames, n_classes
        self.register_buffer("mean", torch.zeros(n_mfcc, 1))
        self.register_buffer("std", torch.ones(n_mfcc, 1))
        self._args: dict[str, Any] = {"n_mfcc": n_mfcc, "frames": frames, "n_classes": n_classes}

    def get_model_args(self) -> dict[str, Any]:
        return dict(self._args)

    @torch.no_grad()
    def fit_normalizer(self, features: torch.Tensor) -> None:
        """Mean and standard deviation of each coefficient over the segments and frames of `features`.

        Shape: `features` `(segments, n_mfcc, frames)`.
        """
        self.mean.copy_(features.mean(dim=(0, 2)).reshape(-1, 1))
        self.std.copy_(features.std(dim=(0, 2)).reshape(-1, 1).clamp(min=1e-3))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (self.n_mfcc, self.frames):
            raise DlspError(f"classifier expects MFCCs of shape (batch, {self.n_mfcc}, {self.frames}), "
                            f"got {tuple(x.shape)}")
        return (x - self.mean) / self.std


class MlpClassifier(MfccClassifier):
    """Flatten -> dense layers with ReLU -> classes. Shape: `(batch, n_mfcc, frames) -> (batch, n_classes)`."""

    def __init__(self, n_mfcc: int, frames: int, n_classes: int, hidden: Sequence[int] = (512, 256, 64),
                 dropout: float = 0.0) -> None:
        super().__init__(n_mfcc, frames, n_classes)
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_mfcc * frames
        for size in hidden:
            layers += [nn.Linear(width, int(size)), nn.ReLU()]
            layers += [nn.Dropout(dropout)] if dropout else []
            width = int(size)
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        self._args.update(hidden=[int(h) for h in hidden], dropout=float(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class CnnClassifier(MfccClassifier):
    """The study's 2-D CNN on the frames x n_mfcc image. Shape: `(batch, n_mfcc, frames) -> (batch, n_classes)`.

    Each block is a "valid" convolution with ReLU (optionally batch norm), the first two followed by a 3x3
    max pool with stride 2 and "same" padding (output ceil(n / 2)), as in the Keras original.
    """

    def __init__(self, n_mfcc: int, frames: int, n_classes: int, channels: Sequence[int] = (32, 64, 128),
                 kernels: Sequence[int] = (3, 3, 2), dense: int = 64, dropout: float = 0.1,
                 batch_norm: bool = False) -> None:
        super().__init__(n_mfcc, frames, n_classes)
        if len(channels) != len(kernels) or not channels:
            raise DlspError(f"cnn needs as many kernels as channels, got {list(channels)} and {list(kernels)}")
        blocks: list[nn.Module] = []
        width = 1
        for index, (out, kernel) in enumerate(zip(channels, kernels, strict=True)):
            blocks += [nn.Conv2d(width, int(out), int(kernel))]
            blocks += [nn.BatchNorm2d(int(out))] if batch_norm else []
            blocks += [nn.ReLU()]
            if index < len(channels) - 1:
                blocks.append(nn.MaxPool2d(3, stride=2, padding=1))
            width = int(out)
        self.features = nn.Sequential(*blocks)
        with torch.no_grad():
            try:
                flat = self.features(torch.zeros(1, 1, frames, n_mfcc)).numel()
            except RuntimeError:
                raise DlspError(f"input of {frames} frames x {n_mfcc} MFCCs is too small for the cnn's "
                                f"{len(channels)} convolutions; use longer segments or more MFCCs") from None
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, dense), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense, n_classes))
        self._args.update(channels=[int(c) for c in channels], kernels=[int(k) for k in kernels],
                          dense=int(dense), dropout=float(dropout), batch_norm=bool(batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, n_mfcc, frames) -> (batch, 1, frames, n_mfcc): the study's time x coefficient image.
        image = self.normalize(x).transpose(1, 2).unsqueeze(1)
        return self.head(self.features(image))


class LstmClassifier(MfccClassifier):
    """Stacked LSTM over frames, last step (or the mean over steps) -> dense -> classes.

    `pool="last"` is the study's LSTM (Keras `return_sequences=False`). Short clips padded at the end make its
    last steps silence, which the LSTM must carry its memory through; `pool="mean"` averages every step's
    output instead and trains far more easily on padded keywords and digits.

    Shape: `(batch, n_mfcc, frames) -> (batch, n_classes)`.
    """

    def __init__(self, n_mfcc: int, frames: int, n_classes: int, hidden: int = 64, layers: int = 2,
                 dense: int = 64, dropout: float = 0.3, bidirectional: bool = False, pool: str = "last") -> None:
        super().__init__(n_mfcc, frames, n_classes)
        if pool not in LSTM_POOLS:
            raise DlspError(f"lstm pool must be one of {', '.join(LSTM_POOLS)}, got {pool!r}")
        self.pool = pool
        self.lstm = nn.LSTM(n_mfcc, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.head = nn.Sequential(nn.Linear(hidden * directions, dense), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense, n_classes))
        self._args.update(hidden=int(hidden), layers=int(layers), dense=int(dense), dropout=float(dropout),
                          bidirectional=bool(bidirectional), pool=pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence, _ = self.lstm(self.normalize(x).transpose(1, 2))
        if self.pool == "mean":
            return self.head(sequence.mean(dim=1))
        if self.lstm.bidirectional:
            # Forward direction's last step and backward direction's first: each has read the whole clip.
            hidden = self.lstm.hidden_size
            last = torch.cat([sequence[:, -1, :hidden], sequence[:, 0, hidden:]], dim=1)
        else:
            last = sequence[:, -1]
        return self.head(last)


MODELS: dict[str, type[MfccClassifier]] = {"mlp": MlpClassifier, "cnn": CnnClassifier, "lstm": LstmClassifier}


def build_classifier(name: str, n_mfcc: int, frames: int, n_classes: int, **args: Any) -> MfccClassifier:
    """Build a registered classifier; unknown names and bad arguments raise `DlspError`."""
    if name not in MODELS:
        raise DlspError(f"unknown classifier {name!r} (known: {', '.join(MODELS)})")
    try:
        return MODELS[name](n_mfcc, frames, n_classes, **args)
    except TypeError as exc:
        raise DlspError(f"bad arguments for classifier {name!r}: {exc}") from None

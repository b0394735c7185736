"""Image classifiers: a multilayer perceptron and a small CNN, built from keyword arguments a checkpoint records.

Both take images `(batch, channels, height, width)` and return class logits `(batch, n_classes)`. Both split into
`trunk` (the layers a pretext task can pretrain) and `head` (the classifier that transfer learning replaces), and
`activations(x)` returns what every layer outputs, for PCA / t-SNE views. A model whose linear layers were
factorised (dlsp.models.lowrank) records them in its model args under `low_rank`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.models.lowrank import low_rank_ranks


class _Classifier(nn.Module):
    trunk: nn.Sequential
    head: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    @torch.no_grad()
    def activations(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """`[("input", x flat), (layer name, output flat), ...]` after every hidden layer and the logits."""
        out = [("input", x.flatten(1))]
        for index, block in enumerate(self.trunk):
            x = block(x)
            if self._is_layer_end(block, index, self.trunk):
                out.append((f"layer {len(out)}", x.flatten(1)))
        for index, block in enumerate(self.head):
            x = block(x)
            if self._is_layer_end(block, index, self.head):
                out.append((f"layer {len(out)}", x.flatten(1)))
        out[-1] = ("output", out[-1][1])
        return out

    @staticmethod
    def _is_layer_end(block: nn.Module, index: int, seq: nn.Sequential) -> bool:
        # Subclasses say where a layer ends, so the views show post-activation features.
        return isinstance(block, nn.ReLU) or index == len(seq) - 1

    def new_head(self, n_classes: int) -> None:
        """Replace the head by a freshly initialised one for `n_classes` (transfer learning)."""
        self.n_classes = n_classes
        self.head = self._build_head(n_classes)

    def _build_head(self, n_classes: int) -> nn.Sequential:
        raise NotImplementedError

    def _with_low_rank(self, args: dict[str, Any]) -> dict[str, Any]:
        ranks = low_rank_ranks(self)
        return {**args, "low_rank": ranks} if ranks else args


class MLPClassifier(_Classifier):
    """Flatten -> [Linear -> ReLU -> Dropout] x len(hidden) -> Linear(n_classes)."""

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), n_classes: int = 10,
                 hidden: Sequence[int] = (1024,) * 5, dropout: float = 0.2) -> None:
        super().__init__()
        if not hidden or any(h < 1 for h in hidden) or not 0 <= dropout < 1:
            raise DlspError(f"MLP needs hidden sizes >= 1 and dropout in [0, 1), got {hidden}, {dropout}")
        self.input_shape, self.n_classes = tuple(int(s) for s in input_shape), int(n_classes)
        self.hidden, self.dropout = [int(h) for h in hidden], float(dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        width = _prod(self.input_shape)
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(self.dropout)]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.head = self._build_head(self.n_classes)

    def _build_head(self, n_classes: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(self.hidden[-1], n_classes))

    @staticmethod
    def _is_layer_end(block: nn.Module, index: int, seq: nn.Sequential) -> bool:
        return isinstance(block, nn.ReLU) or (index == len(seq) - 1 and isinstance(block, nn.Linear))

    def get_model_args(self) -> dict[str, Any]:
        return self._with_low_rank({"input_shape": list(self.input_shape), "n_classes": self.n_classes,
                                    "hidden": list(self.hidden), "dropout": self.dropout})


class SimpleCNN(_Classifier):
    """[Conv3x3 -> (BatchNorm) -> ReLU -> MaxPool2] x len(channels) -> Flatten -> Linear(dense) -> ReLU -> Dropout
    -> Linear.

    The trunk (convolutions) is what a pretext task pretrains; the head is the dense classifier.
    """

    def __init__(self, input_shape: Sequence[int] = (3, 32, 32), n_classes: int = 10,
                 channels: Sequence[int] = (32, 64), dense: int = 128, dropout: float = 0.3,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.input_shape, self.n_classes = tuple(int(s) for s in input_shape), int(n_classes)
        self.channels, self.dense, self.dropout = [int(c) for c in channels], int(dense), float(dropout)
        self.batch_norm = bool(batch_norm)
        in_channels, height, width = self.input_shape
        if height >> len(self.channels) < 1 or width >> len(self.channels) < 1:
            raise DlspError(f"images of {height}x{width} are too small for {len(self.channels)} pooling stages")
        layers: list[nn.Module] = []
        for out_channels in self.channels:
            # Batch norm (not in the studies) makes the pretext task and deeper trunks train in a few epochs.
            norm = [nn.BatchNorm2d(out_channels)] if self.batch_norm else []
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not self.batch_norm), *norm,
                       nn.ReLU(), nn.MaxPool2d(2)]
            in_channels, height, width = out_channels, height // 2, width // 2
        layers.append(nn.Flatten())
        self.trunk = nn.Sequential(*layers)
        self.flat_features = in_channels * height * width
        self.head = self._build_head(self.n_classes)

    def _build_head(self, n_classes: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(self.flat_features, self.dense), nn.ReLU(), nn.Dropout(self.dropout),
                             nn.Linear(self.dense, n_classes))

    @staticmethod
    def _is_layer_end(block: nn.Module, index: int, seq: nn.Sequential) -> bool:
        return isinstance(block, nn.MaxPool2d) or (isinstance(block, nn.ReLU) and index + 1 < len(seq)
                                                   and not isinstance(seq[index + 1], nn.MaxPool2d)) \
            or (index == len(seq) - 1 and isinstance(block, nn.Linear))

    def stage_of_trunk_modules(self) -> list[int | None]:
        """For every module of `trunk`, the index of the convolution stage it belongs to (None: the flatten)."""
        per_stage = 4 if self.batch_norm else 3  # conv, (norm), relu, pool
        return [i // per_stage if i < per_stage * len(self.channels) else None for i in range(len(self.trunk))]

    def reset_stages(self, first: int) -> None:
        """Re-initialise convolution stages `first`.. (transfer that keeps only the early, general stages)."""
        for module, stage in zip(self.trunk, self.stage_of_trunk_modules(), strict=True):
            if stage is not None and stage >= first and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def get_model_args(self) -> dict[str, Any]:
        return self._with_low_rank({"input_shape": list(self.input_shape), "n_classes": self.n_classes,
                                    "channels": list(self.channels), "dense": self.dense, "dropout": self.dropout,
                                    "batch_norm": self.batch_norm})


MODELS: dict[str, type[nn.Module]] = {"mlp": MLPClassifier, "cnn": SimpleCNN}


def build_classifier(name: str, input_shape: Sequence[int], n_classes: int, **args: Any) -> nn.Module:
    """Build a registered image classifier; unknown names or arguments are user errors."""
    if name not in MODELS:
        raise DlspError(f"unknown image model {name!r} (known: {', '.join(sorted(MODELS))})")
    try:
        return MODELS[name](input_shape=list(input_shape), n_classes=n_classes, **args)
    except TypeError as exc:
        raise DlspError(f"bad arguments for model {name!r}: {exc}") from None


def _prod(values: Sequence[int]) -> int:
    result = 1
    for v in values:
        result *= v
    return result

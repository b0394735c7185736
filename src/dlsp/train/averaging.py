"""Weight averaging over the last epochs of a run (`train.average_last`).

With a decaying learning rate the last epochs' weights wander around a minimum; their mean usually sits nearer
its centre than any one of them, and it does not depend on which single epoch a noisy validation figure happened
to favour (the best of 30 noisy validation scores is biased low; the average is one model, scored once). This is
the checkpoint averaging of speaker-verification toolkits (WeSpeaker averages its last 10 epochs) and of
stochastic weight averaging (Izmailov et al., 2018). The mean is kept as a running mean (one copy of the weights,
saved in `last.pt` so a resumed run continues it); BatchNorm's running statistics are averaged like weights, as
checkpoint averaging does, and integer buffers (counters) are the latest epoch's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError


class RunningAverage:
    """The mean of a model's state over the epochs from `start` (0-based) on."""

    def __init__(self, start: int) -> None:
        self.start = int(start)
        self.mean: dict[str, torch.Tensor] = {}
        self.epochs: list[int] = []

    @property
    def count(self) -> int:
        """Epochs averaged so far."""
        return len(self.epochs)

    def update(self, model: nn.Module, epoch: int) -> None:
        """Add the model's weights after `epoch` (epochs before `start` are ignored)."""
        if epoch < self.start:
            return
        self.epochs.append(int(epoch))
        for key, value in model.state_dict().items():
            value = value.detach().to("cpu", copy=True)
            if not value.is_floating_point() or key not in self.mean:
                self.mean[key] = value.double() if value.is_floating_point() else value
            else:
                self.mean[key] += (value.double() - self.mean[key]) / self.count

    def load_into(self, model: nn.Module) -> None:
        """Give `model` the averaged weights (in its own dtypes and device)."""
        if not self.count:
            raise ValueError("no epoch has been averaged yet")
        own = model.state_dict()
        model.load_state_dict({key: self.mean[key].to(own[key].dtype) for key in own})

    def state(self) -> dict[str, Any]:
        """Plain data for `last.pt`."""
        return {"start": self.start, "epochs": list(self.epochs),
                "mean": {key: value.clone() for key, value in self.mean.items()}}

    def restore(self, state: dict[str, Any] | None) -> None:
        """Continue from `state()` (None: nothing averaged yet)."""
        if not state:
            return
        if int(state["start"]) != self.start:
            raise DlspError(f"last.pt averages from epoch {int(state['start']) + 1}, this run from {self.start + 1}")
        self.epochs, self.mean = list(state["epochs"]), dict(state["mean"])


def averaging_start(epochs: int, average_last: int) -> int | None:
    """The first epoch (0-based) averaged when the last `average_last` of `epochs` are; None when off (0 or 1)."""
    if average_last < 0:
        raise DlspError(f"train.average_last must be 0 (off) or more, got {average_last}")
    return None if average_last <= 1 else max(0, epochs - average_last)

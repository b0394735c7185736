"""The denoise task as `dlsp run` and `dlsp tune` see it (named in `dlsp.experiments.registry`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dlsp.train.task import Task, engine_trainer, imported, paths


def _load_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    from dlsp.denoise.train import load_data

    return load_data(config, clean=paths(inputs.get("clean")), noise=paths(inputs.get("noise")),
                     pairs=inputs.get("pairs"), cache=inputs.get("cache"), progress=progress)


TASK = Task(
    "denoise", imported("dlsp.denoise.train", "DenoiseConfig"),
    {"clean": "clean speech folder(s)", "noise": "noise folder(s)", "pairs": "clean/noisy pair layout",
     "cache": "audio cache folder"},
    _load_data, engine_trainer("dlsp.denoise.train"),
    ("train.epochs=2", "train.max_seconds=20", "data.segments_per_epoch=64", "data.val_segments=16",
     "train.batch_size=16"),
    multiple=("clean", "noise"), primary_input="pairs", required=(("pairs",), ("clean", "noise")),
    existing=("clean", "noise", "pairs"),
)

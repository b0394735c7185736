"""The classify task as `dlsp run` and `dlsp tune` see it (named in `dlsp.experiments.registry`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dlsp.errors import DlspError
from dlsp.train.task import Task, engine_trainer, imported


def _load_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    from dlsp.classify.train import load_data

    if "data" not in inputs:
        raise DlspError("training data missing: give --data DIR (a labelled audio folder)")
    return load_data(config, inputs["data"], inputs.get("format", "auto"), inputs.get("cache"), progress)


TASK = Task(
    "classify", imported("dlsp.classify.train", "ClassifyConfig"),
    {"data": "labelled audio folder", "format": "dataset layout (auto, folders, fsdd, speech-commands, gtzan, "
                                                "manifest)", "cache": "feature cache folder"},
    _load_data, engine_trainer("dlsp.classify.train"),
    ("train.epochs=2", "train.max_seconds=20", "train.patience=null"), required=(("data",),),
    existing=("data",),
)

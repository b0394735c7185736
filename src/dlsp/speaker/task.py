"""The speaker task as `dlsp run` and `dlsp tune` see it (named in `dlsp.experiments.registry`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dlsp.errors import DlspError
from dlsp.train.task import Task, engine_trainer, imported


def _load_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    from dlsp.speaker.train import load_data

    if "data" not in inputs:
        raise DlspError("training data missing: give --data DIR (speaker folders, FSDD, Speech Commands, ...)")
    return load_data(config, inputs["data"], inputs.get("format", "auto"), progress=progress)


TASK = Task(
    "speaker", imported("dlsp.speaker.train", "SpeakerTrainConfig"),
    {"data": "speaker-labelled audio folder(s)", "format": "dataset layout (auto, speakers, fsdd, "
                                                           "speech-commands, librispeech, manifest)"},
    _load_data, engine_trainer("dlsp.speaker.train"),
    ("train.epochs=2", "train.max_seconds=30", "train.patience=null", "data.segments_per_epoch=64"),
    multiple=("data",), required=(("data",),), existing=("data",),
)

"""The vision task as `dlsp run` sees it (named in `dlsp.experiments.registry`): a recipe is a study, made of
several trainings, so it reports its final figures once and neither resumes nor tunes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dlsp.errors import DlspError
from dlsp.train.task import Task, imported


def _load_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    # A study loads its own data (sizes and limits are part of its config): pass the folder through.
    return inputs.get("data")


def _quick(config: Any) -> Any:
    from dlsp.vision.config import quick

    return quick(config)


def _train(config: Any, data: Any, out: str | os.PathLike[str], tracker: Any, progress: bool,
           resume: bool = False, overwrite: bool = False) -> Any:
    """Run the study; returns a one-record FitResult holding its final figures (a study is several trainings)."""
    import dataclasses

    from dlsp.config import to_dict
    from dlsp.train.loop import FitResult
    from dlsp.train.tracking import tracked_run
    from dlsp.vision.run import run_study

    if resume:
        raise DlspError("vision studies do not resume; run the recipe again (--overwrite)", out)
    if data is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, dir=str(data)))

    def study(tracker: Any) -> dict:
        tracker.log_params(to_dict(config))
        return run_study(config, out, progress=progress, log=lambda *_: None, overwrite=overwrite)

    results = tracked_run(tracker, study, out, ("*.png", "results.json", "best.pt"), lambda value: value)
    record = {key: float(value) for key, value in results.items()
              if isinstance(value, int | float) and not isinstance(value, bool)}
    return FitResult(history=[record], best_epoch=0, stopped="study finished")


TASK = Task(
    "vision", imported("dlsp.vision.config", "VisionConfig"),
    {"data": "dataset folder: MNIST IDX files, cifar-10-batches-py, or train/<class>/ + test/<class>/ images"},
    _load_data, _train, quick_config=_quick, epochs_api=False, existing=("data",),
)

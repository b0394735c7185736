"""Tasks that recipes can name (`task: denoise`): how to build a task's config, load its data and train it.

`dlsp tune` (and the generic runners) go through a `Task` instead of knowing each task: the task's config
dataclass, the recipe keys of its data locations, a `--quick` shrink, and `train(config, data, out, tracker)`
returning the epoch history with the best epoch. Task modules are imported only when their task is used.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlsp.errors import DlspError


@dataclass(frozen=True)
class Task:
    """What the generic commands need from one task."""

    name: str
    config_class: Callable[[], type]
    # Data locations the task reads: name -> help, given on the command line as `--input name=path`.
    inputs: Mapping[str, str]
    load_data: Callable[[Any, Mapping[str, Any], bool], Any]
    # train(config, data, out, tracker, progress, resume, overwrite) -> FitResult (history and best epoch); an
    # existing run folder is refused unless resume or overwrite (`dlsp.train.run_folder.check_run_folder`)
    train: Callable[..., Any]
    # `--set` overrides that shrink a run to under a minute on 2 cores (smoke tests, trying a recipe).
    quick_overrides: tuple[str, ...] = ()
    # Inputs that take several paths (`--input noise=a --input noise=b`); the others take one.
    multiple: tuple[str, ...] = ()
    # The input `--data DIR` stands for.
    primary_input: str = "data"
    # A `--quick` shrink that is a function of the config (applied before `--set` overrides), for tasks whose
    # smoke version is not a fixed set of overrides.
    quick_config: Callable[[Any], Any] | None = None
    # The inputs training cannot do without, as alternatives: every input of one group must be given.
    required: tuple[tuple[str, ...], ...] = ()
    # The inputs that name existing files or folders (a cache folder is made, a format is no path).
    existing: tuple[str, ...] = ()
    # Whether `train` reports per-epoch validation metrics that `dlsp tune` can optimise, resumes and runs under
    # torchrun; a study made of several trainings (vision) does not.
    epochs_api: bool = True


def check_inputs(task: Task, inputs: Mapping[str, Any]) -> None:
    """Fail in one line when the task's data is missing or names nothing, before any data loads (or any trial
    of a tuning study starts, each of which would fail the same way)."""
    if task.required and not any(all(name in inputs for name in group) for group in task.required):
        ways = ", or ".join(" and ".join(f"--input {name}=PATH ({task.inputs[name]})" for name in group)
                            for group in task.required)
        raise DlspError(f"training data missing: give {ways}")
    for name in task.existing:
        for path in _paths(inputs.get(name)) or []:
            if not Path(path).exists():
                raise DlspError(f"does not exist (the {name} input)", path)


def _denoise_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    from dlsp.denoise.train import load_data

    return load_data(config, clean=_paths(inputs.get("clean")), noise=_paths(inputs.get("noise")),
                     pairs=inputs.get("pairs"), cache=inputs.get("cache"), progress=progress)


def _attribute(module: str, name: str) -> Callable[[], Any]:
    """`module.name`, imported when asked for (a task's config class)."""
    return lambda: getattr(importlib.import_module(module), name)


def _trainer(module: str) -> Callable[..., Any]:
    """The `train` of a task whose module's `train_run` trains through the run engine (`dlsp.train.run`)."""

    def train(config: Any, data: Any, out: str | os.PathLike[str], tracker: Any, progress: bool,
              resume: bool = False, overwrite: bool = False) -> Any:
        run = importlib.import_module(module).train_run
        return run(config, data, out, resume=resume, overwrite=overwrite, progress=progress, log=lambda *_: None,
                   tracker=tracker)[1]

    return train


def _classify_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    from dlsp.classify.train import load_data

    if "data" not in inputs:
        raise DlspError("training data missing: give --data DIR (a labelled audio folder)")
    return load_data(config, inputs["data"], inputs.get("format", "auto"), inputs.get("cache"), progress)


def _speaker_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    from dlsp.speaker.train import load_data

    if "data" not in inputs:
        raise DlspError("training data missing: give --data DIR (speaker folders, FSDD, Speech Commands, ...)")
    return load_data(config, inputs["data"], inputs.get("format", "auto"), progress=progress)


def _vision_data(config: Any, inputs: Mapping[str, Any], progress: bool) -> Any:
    # A study loads its own data (sizes and limits are part of its config): pass the folder through.
    return inputs.get("data")


def _vision_quick(config: Any) -> Any:
    from dlsp.vision.config import quick

    return quick(config)


def _vision_train(config: Any, data: Any, out: str | os.PathLike[str], tracker: Any, progress: bool,
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


def _paths(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


TASKS: dict[str, Task] = {
    "denoise": Task(
        "denoise", _attribute("dlsp.denoise.train", "DenoiseConfig"),
        {"clean": "clean speech folder(s)", "noise": "noise folder(s)", "pairs": "clean/noisy pair layout",
         "cache": "audio cache folder"},
        _denoise_data, _trainer("dlsp.denoise.train"),
        ("train.epochs=2", "train.max_seconds=20", "data.segments_per_epoch=64", "data.val_segments=16",
         "train.batch_size=16"),
        multiple=("clean", "noise"), primary_input="pairs", required=(("pairs",), ("clean", "noise")),
        existing=("clean", "noise", "pairs"),
    ),
    "classify": Task(
        "classify", _attribute("dlsp.classify.train", "ClassifyConfig"),
        {"data": "labelled audio folder", "format": "dataset layout (auto, folders, fsdd, speech-commands, gtzan, "
                                                    "manifest)", "cache": "feature cache folder"},
        _classify_data, _trainer("dlsp.classify.train"),
        ("train.epochs=2", "train.max_seconds=20", "train.patience=null"), required=(("data",),),
        existing=("data",),
    ),
    "speaker": Task(
        "speaker", _attribute("dlsp.speaker.train", "SpeakerTrainConfig"),
        {"data": "speaker-labelled audio folder(s)", "format": "dataset layout (auto, speakers, fsdd, "
                                                               "speech-commands, librispeech, manifest)"},
        _speaker_data, _trainer("dlsp.speaker.train"),
        ("train.epochs=2", "train.max_seconds=30", "train.patience=null", "data.segments_per_epoch=64"),
        multiple=("data",), required=(("data",),), existing=("data",),
    ),
    "vision": Task(
        "vision", _attribute("dlsp.vision.config", "VisionConfig"),
        {"data": "dataset folder: MNIST IDX files, cifar-10-batches-py, or train/<class>/ + test/<class>/ images"},
        _vision_data, _vision_train, quick_config=_vision_quick, epochs_api=False, existing=("data",),
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DlspError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def recipe_task(recipe: Mapping[str, Any], where: str | os.PathLike[str] | None = None) -> Task:
    """The task a recipe names with `task:` (recipes without one are denoising recipes)."""
    name = recipe.get("task", "denoise")
    if not isinstance(name, str):
        raise DlspError(f"task: expected a task name, got {name!r}", where)
    try:
        return get_task(name)
    except DlspError as exc:
        raise DlspError(str(exc), where) from None


def parse_inputs(task: Task, items: list[str]) -> dict[str, Any]:
    """`name=path` data locations checked against the task's inputs: a list for inputs that take several."""
    inputs: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise DlspError(f"--input {item!r} must look like name=path")
        if name not in task.inputs:
            raise DlspError(f"task {task.name!r} has no input {name!r} (it has: {', '.join(task.inputs)})")
        if name in task.multiple:
            inputs.setdefault(name, []).append(value)
        elif name in inputs:
            raise DlspError(f"--input {name}= given twice; task {task.name!r} takes one {name} path")
        else:
            inputs[name] = value
    return inputs

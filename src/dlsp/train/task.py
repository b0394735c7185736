"""What a task package declares for the generic commands (`dlsp run`, `dlsp tune`): a `Task`.

Each task package has a `task.py` holding its `TASK` (`dlsp.denoise.task`, `dlsp.speaker.task`, ...), and
`dlsp.experiments.registry` names them. A `Task` gives the task's config dataclass, the recipe keys of its data
locations, a `--quick` shrink, how to load its data and `train(config, data, out, tracker, ...)` returning the
epoch history with the best epoch. A task module imports its heavy modules (its training) only when called.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


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


def imported(module: str, name: str) -> Callable[[], Any]:
    """`module.name`, imported when asked for (a task's config class)."""
    return lambda: getattr(importlib.import_module(module), name)


def engine_trainer(module: str) -> Callable[..., Any]:
    """The `train` of a task whose module's `train_run` trains through the run engine (`dlsp.train.run`)."""

    def train(config: Any, data: Any, out: str | os.PathLike[str], tracker: Any, progress: bool,
              resume: bool = False, overwrite: bool = False) -> Any:
        run = importlib.import_module(module).train_run
        return run(config, data, out, resume=resume, overwrite=overwrite, progress=progress, log=lambda *_: None,
                   tracker=tracker)[1]

    return train


def paths(value: Any) -> list[str] | None:
    """An input's value as a list of path strings (`None` when not given)."""
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]

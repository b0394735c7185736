"""The tasks that recipes can name (`task: denoise`), and the data inputs a command line gives them.

A plain mapping, name -> the `Task` its package declares in its `task.py` (`dlsp.train.task.Task`). A new task is
one line here. Task modules import their training code only when a task loads data or trains.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlsp.classify import task as classify
from dlsp.denoise import task as denoise
from dlsp.errors import DlspError
from dlsp.speaker import task as speaker
from dlsp.train.task import Task, paths
from dlsp.vision import task as vision

TASKS: dict[str, Task] = {
    "denoise": denoise.TASK,
    "classify": classify.TASK,
    "speaker": speaker.TASK,
    "vision": vision.TASK,
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


def check_inputs(task: Task, inputs: Mapping[str, Any]) -> None:
    """Fail in one line when the task's data is missing or names nothing, before any data loads (or any trial
    of a tuning study starts, each of which would fail the same way)."""
    if task.required and not any(all(name in inputs for name in group) for group in task.required):
        ways = ", or ".join(" and ".join(f"--input {name}=PATH ({task.inputs[name]})" for name in group)
                            for group in task.required)
        raise DlspError(f"training data missing: give {ways}")
    for name in task.existing:
        for path in paths(inputs.get(name)) or []:
            if not Path(path).exists():
                raise DlspError(f"does not exist (the {name} input)", path)

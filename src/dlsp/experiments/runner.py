"""The recipe runner behind `dlsp run`: any task's recipe, its data and overrides, trained into a run folder.

The command checks the recipe and launches torchrun when asked for several processes; `run_recipe` then does the
same in every process: the run folder rule (rank 0, before the data loads), the config (recipe, `--quick`, then
`--set` overrides; a resumed run continues with the config it started with), the data and the task's training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dlsp.config import apply_overrides, load_config
from dlsp.experiments.registry import check_inputs, parse_inputs
from dlsp.train import distributed
from dlsp.train.run_folder import check_run_folder
from dlsp.train.task import Task
from dlsp.train.tracking import make_tracker


def run_recipe(task: Task, recipe: str | os.PathLike[str], out: str | os.PathLike[str], *, data: str | None = None,
               inputs: list[str] | tuple[str, ...] = (), overrides: list[str] | tuple[str, ...] = (),
               seed: int | None = None, quick: bool = False, resume: bool = False, overwrite: bool = False,
               progress: bool = True, track: str | None = None, track_uri: str | None = None) -> Any:
    """Train `recipe` (of `task`) into `out` and return the task's FitResult (history and best epoch).

    `data` stands for the task's primary input, `inputs` are `name=path` items; `quick` shrinks the run to under
    a minute. Under torchrun every process calls this; only rank 0 writes, tracks and shows progress.
    """
    out = Path(out)
    distributed.init_from_env()
    main = distributed.is_main()
    check_run_folder(out, resume, overwrite, task.epochs_api)  # rank 0, before the data loads
    items = list(inputs) + ([f"{task.primary_input}={data}"] if data else [])
    given = parse_inputs(task, items)
    overrides = [*(task.quick_overrides if quick else ()), *overrides]
    overrides += [f"train.seed={seed}"] if seed is not None else []
    if resume and (out / "config.yaml").exists():
        recipe = str(out / "config.yaml")  # a resumed run continues with the config it started with
    config = load_config(task.config_class(), recipe)
    if quick and task.quick_config is not None:
        config = task.quick_config(config)
    config = apply_overrides(config, overrides)
    train = getattr(config, "train", None)
    if distributed.world()[1] > 1 and hasattr(train, "device"):
        # Each process on its own GPU (cuda:LOCAL_RANK); on the CPU nothing changes.
        config = apply_overrides(config, [f"train.device={distributed.local_device(train.device)}"])
    check_inputs(task, given)
    loaded = task.load_data(config, given, progress and main)
    tracker = make_tracker(track, out, track_uri) if main else None
    return task.train(config, loaded, out, tracker, progress and main, resume=resume, overwrite=overwrite)

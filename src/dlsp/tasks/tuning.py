"""`dlsp tune`: Optuna studies over any task's recipe, in one process or several.

A `TuneJob` is plain data, so worker processes (spawned, never forked) rebuild everything from it: the recipe,
the task, the data, and the study in its shared storage. Every trial trains into `OUT/trial_NNNN/` through the
task's own training run (run folder, checkpoints, curves), reporting its metric every epoch for pruning.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlsp.config import load_config, load_recipe, save_config, to_dict
from dlsp.errors import DlspError
from dlsp.fileio import ensure_dir, write_json
from dlsp.tasks.registry import Task, check_inputs, recipe_task
from dlsp.train.tune import (
    PruningTracker,
    TuneSpec,
    decoded_params,
    open_study,
    optimize,
    parse_tune_section,
    run_workers,
    storage_for,
)


@dataclass(frozen=True)
class TuneJob:
    """Everything a tuning worker needs (picklable)."""

    recipe: str
    out: str
    trials: int
    study: str
    storage: str | None = None
    overrides: tuple[str, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)
    quick: bool = False
    seed: int | None = None
    progress: bool = False


def prepare(job: TuneJob) -> tuple[Task, TuneSpec]:
    """Read and check the recipe, its task and its `tune:` section, the base config and the task's inputs (fails
    before any work)."""
    recipe = load_recipe(job.recipe)
    task = recipe_task(recipe, job.recipe)
    if not task.epochs_api:
        # A study reports test figures only; tuning on them would select on the test set.
        raise DlspError(f"{task.name} recipes cannot be tuned (no per-epoch validation metric)", job.recipe)
    if "tune" not in recipe:
        raise DlspError("the recipe has no 'tune:' section declaring the search space", job.recipe)
    try:
        spec = parse_tune_section(recipe["tune"])
    except DlspError as exc:
        raise DlspError(str(exc), job.recipe) from None
    config = base_config(job, task)
    # Every parameter must name an existing config key: try each one's first value now.
    from dlsp.config import apply_overrides

    for param in spec.params:
        value = param.choices[0] if param.type == "categorical" else param.low
        try:
            apply_overrides(config, [f"{param.name}={json.dumps(int(value) if param.type == 'int' else value)}"])
        except DlspError as exc:
            raise DlspError(f"tune.params: {exc.problem}", job.recipe) from None
    check_inputs(task, job.inputs)
    return task, spec


def base_config(job: TuneJob, task: Task, extra: list[str] | None = None) -> Any:
    quick = list(task.quick_overrides) if job.quick else []
    return load_config(task.config_class(), job.recipe, [*quick, *job.overrides, *(extra or [])])


def work(job: TuneJob, lock: Any = None) -> None:
    """One worker: join the study and run trials until it holds `job.trials` trials (`lock`: see `optimize`)."""
    import torch

    task, spec = prepare(job)
    if os.environ.get("DLSP_TUNE_WORKER"):
        torch.set_num_threads(1)  # K workers share the machine's cores
    study = open_study(job.study, storage_for(job.storage, job.out), spec, job.seed)
    data_cache: dict[str, Any] = {}

    def data_for(config: Any) -> Any:
        key = json.dumps(to_dict(config).get("data", {}), sort_keys=True, default=str)
        if key not in data_cache:  # trials that do not tune the data share it
            data_cache.clear()
            data_cache[key] = task.load_data(config, job.inputs, job.progress)
        return data_cache[key]

    def objective(overrides: list[str], trial_dir: Path, tracker: PruningTracker) -> float:
        config = base_config(job, task, overrides)
        data = data_for(config)
        ensure_dir(trial_dir)
        # A trial folder left by an earlier study in the same folder is started over.
        result = task.train(config, data, trial_dir, tracker, job.progress, overwrite=True)
        record = result.history[result.best_epoch]
        if spec.metric not in record:
            raise DlspError(f"tune.metric {spec.metric!r} is not reported by task {task.name!r}")
        return float(record[spec.metric])

    tuned_data = any(param.name.startswith("data.") for param in spec.params)
    if not tuned_data and len(study.get_trials(deepcopy=False)) < job.trials:
        data_for(base_config(job, task))  # unreadable data fails once, here, instead of in every trial
    optimize(study, spec, objective, job.out, job.trials, lock)


def _worker_main(job: TuneJob, lock: Any) -> None:
    import sys

    os.environ["DLSP_TUNE_WORKER"] = "1"
    try:
        work(job, lock)
    except DlspError as exc:  # one line, as from the command itself; the parent reports the exit code
        print(f"dlsp: error: {exc}", file=sys.stderr)
        sys.exit(2)


def tune(job: TuneJob, workers: int = 1) -> Any:
    """Run the study with `workers` processes (1: in this process) and return it, with OUT/results.json and
    OUT/best_config.yaml (the recipe's config with the best trial's values) written."""
    task, spec = prepare(job)
    ensure_dir(job.out)
    storage = storage_for(job.storage, job.out)  # an unreachable database fails here, before any worker starts
    if workers <= 1:
        work(job)
    else:
        run_workers(_worker_main, (job,), workers)
    study = open_study(job.study, storage, spec, job.seed)
    summary = summarize(study, spec)
    write_json(Path(job.out) / "results.json", summary)
    if summary["best_trial"] is not None:
        save_config(Path(job.out) / "best_config.yaml", base_config(job, task, summary["best_overrides"]))
    return study


def summarize(study: Any, spec: TuneSpec) -> dict[str, Any]:
    import optuna

    states = [t.state.name.lower() for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    return {
        "study": study.study_name, "metric": spec.metric, "direction": spec.direction,
        "n_trials": len(study.trials), "states": {s: states.count(s) for s in sorted(set(states))},
        "best_trial": best.number if best else None, "best_value": best.value if best else None,
        "best_params": decoded_params(best.params, spec) if best else None,
        "best_overrides": best.user_attrs.get("overrides", []) if best else [],
    }

"""`dlsp tune`: Optuna studies over any task's recipe, in one process or several.

A recipe's `tune:` section declares the search (plain training ignores it):

    tune:
      metric: val_loss          # a key of the epoch records; the objective is its value at the best epoch
      direction: minimize       # or maximize
      pruner: median            # median (default), hyperband or none
      params:
        train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
        train.batch_size: {type: int, low: 8, high: 64, step: 8}
        model.args.hidden: {type: categorical, choices: [[256], [512, 256]]}

Each trial turns its sampled values into `--set` overrides and trains into `OUT/trial_NNNN/` through the task's
own training run (run folder, checkpoints, curves) with a `PruningTracker`, which reports the metric to the trial
every epoch so the pruner can stop a bad trial early.

A `TuneJob` is plain data, so worker processes (spawned, never forked) rebuild everything from it: the recipe,
the task, the data, and the study in its shared storage. Studies live in Optuna storage: a journal file by
default (safe for several processes on one machine), or any SQLAlchemy URL (`postgresql://user@host/db` lets many
machines share one study). Workers started with `workers=K` are separate processes that pull trials from the same
study until it holds `n_trials` trials; they share a lock, so together they run exactly that many. Separate
`dlsp tune` commands (other machines) do not share it: each keeps the budget among its own workers, and two
commands checking at the same moment can add one trial too many.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import multiprocessing
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from dlsp.config import load_config, load_recipe, save_config, to_dict
from dlsp.errors import DlspError
from dlsp.experiments.registry import check_inputs, recipe_task
from dlsp.fileio import atomic_path, ensure_dir, write_json
from dlsp.train.task import Task

PARAM_TYPES = ("float", "int", "categorical")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("minimize", "maximize")
URL_SCHEMES = ("postgresql", "postgres", "mysql", "sqlite")


@dataclass(frozen=True)
class Param:
    """One searched value: `float`/`int` in [low, high] (optionally log-scaled or stepped), or `categorical`."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class TuneSpec:
    """A recipe's `tune:` section."""

    params: tuple[Param, ...]
    metric: str = "val_loss"
    direction: str = "minimize"
    pruner: str = "median"


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
        record = result.shipped()[1]
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


def parse_tune_section(section: Any, where: str = "tune") -> TuneSpec:
    """Check and read a recipe's `tune:` mapping; every mistake is one `DlspError` naming the key."""
    if not isinstance(section, Mapping):
        raise DlspError(f"{where}: expected a mapping with 'params'")
    unknown = set(section) - {"metric", "direction", "pruner", "params"}
    if unknown:
        raise DlspError(f"{where}: unknown key {sorted(unknown)[0]!r} (valid: metric, direction, pruner, params)")
    direction = section.get("direction", "minimize")
    if direction not in DIRECTIONS:
        raise DlspError(f"{where}.direction: must be minimize or maximize, got {direction!r}")
    pruner = str(section.get("pruner", "median"))
    if pruner not in PRUNERS:
        raise DlspError(f"{where}.pruner: must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    params = section.get("params")
    if not isinstance(params, Mapping) or not params:
        raise DlspError(f"{where}.params: declare at least one parameter (name: {{type: float, low: .., high: ..}})")
    return TuneSpec(tuple(_param(name, spec, f"{where}.params.{name}") for name, spec in params.items()),
                    str(section.get("metric", "val_loss")), direction, pruner)


def suggest_overrides(trial: Any, spec: TuneSpec) -> list[str]:
    """Sample every parameter for `trial` and return them as `key=value` overrides (values as YAML/JSON)."""
    overrides = []
    for param in spec.params:
        if param.type == "float":
            value = trial.suggest_float(param.name, param.low, param.high, log=param.log, step=param.step)
        elif param.type == "int":
            value = trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log,
                                      step=int(param.step or 1))
        else:
            # Optuna stores categorical choices as JSON-able scalars; lists are encoded as JSON strings.
            encoded = [json.dumps(choice) for choice in param.choices]
            value = json.loads(trial.suggest_categorical(param.name, encoded))
        overrides.append(f"{param.name}={json.dumps(value)}")
    return overrides


class PruningTracker:
    """A tracker that reports `metric` to an Optuna trial every epoch and stops the trial when it is pruned."""

    def __init__(self, trial: Any, metric: str, inner: Any | None = None) -> None:
        self.trial, self.metric, self.inner = trial, metric, inner

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.inner:
            self.inner.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if self.inner:
            self.inner.log_metrics(metrics, step)
        if self.metric not in metrics:
            raise DlspError(f"tune.metric {self.metric!r} is not reported by this task (it reports "
                            f"{', '.join(metrics)})")
        value = float(metrics[self.metric])
        if math.isfinite(value):
            self.trial.report(value, step)
        if self.trial.should_prune():
            optuna = _require_optuna()
            raise optuna.TrialPruned(f"pruned at epoch {step + 1} ({self.metric} = {value:.4g})")

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        if self.inner:
            self.inner.log_artifact(path)

    def finish(self, results: Mapping[str, Any] | None = None, failed: bool = False) -> None:
        if self.inner:
            self.inner.finish(results, failed)


def storage_for(storage: str | None, out: str | os.PathLike[str]) -> Any:
    """Optuna storage: a journal file (`None`: OUT/study.journal, or a path), or an SQLAlchemy URL."""
    optuna = _require_optuna()
    if storage and storage.split(":", 1)[0].split("+", 1)[0] in URL_SCHEMES and "://" in storage:
        try:
            with warnings.catch_warnings():
                # Heartbeats (a dead worker's trial is marked failed) are "experimental" in Optuna 4.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(storage, heartbeat_interval=60, grace_period=120)
        except Exception as exc:  # SQLAlchemy/driver errors: unreachable server, bad credentials, no driver
            raise DlspError(f"cannot open tuning storage {_redacted(storage)} ({_first_line(exc)})") from None
    if storage and ("://" in storage or "\n" in storage):
        # A mistyped URL must not silently become a journal file named after it.
        raise DlspError(f"not a database URL ({', '.join(URL_SCHEMES)}) or a journal file path: "
                        f"{_redacted(storage)!r}")
    path = Path(storage) if storage else Path(out) / "study.journal"
    ensure_dir(path.parent)
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise DlspError(f"cannot use the journal file ({exc.strerror or exc})", path) from None


def open_study(name: str, storage: Any, spec: TuneSpec, seed: int | None = None) -> Any:
    """Create or load the study `name` (a second worker or a rerun joins the existing one)."""
    optuna = _require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
              "hyperband": optuna.pruners.HyperbandPruner, "none": optuna.pruners.NopPruner}[spec.pruner]()
    study = optuna.create_study(study_name=name, storage=storage, direction=spec.direction, pruner=pruner,
                                sampler=optuna.samplers.TPESampler(seed=seed), load_if_exists=True)
    if study.direction.name.lower() != spec.direction:
        raise DlspError(f"study {name!r} exists with direction {study.direction.name.lower()}; the recipe says "
                        f"{spec.direction}")
    return study


Objective = Callable[[list[str], Path, PruningTracker], float]


def optimize(study: Any, spec: TuneSpec, objective: Objective, out: str | os.PathLike[str], n_trials: int,
             lock: Any = None) -> None:
    """Run trials of `study` in this process until it holds `n_trials` trials (finished, pruned, failed, running
    or reserved).

    `objective(overrides, trial_dir, tracker)` trains one configuration and returns the metric's value. `lock`
    (shared by the workers of one `tune` call, see `run_workers`) makes "is there room for one more trial?" and
    taking it one step, so workers never run more than `n_trials` between them.
    """
    _require_optuna()
    out = Path(out)
    budget = lock if lock is not None else contextlib.nullcontext()

    def run_trial(trial: Any) -> float:
        overrides = suggest_overrides(trial, spec)
        trial.set_user_attr("overrides", overrides)
        return float(objective(overrides, out / f"trial_{trial.number:04d}", PruningTracker(trial, spec.metric)))

    while True:
        with budget:
            if len(study.get_trials(deepcopy=False)) >= n_trials:
                return
            # A reserved (waiting) trial counts towards the budget at once, and the next ask() takes a waiting
            # trial before it creates one: each worker reserves one, then runs one.
            study.enqueue_trial({})
        study.optimize(run_trial, n_trials=1, catch=(DlspError,), gc_after_trial=True)


def run_workers(worker: Callable[..., None], args: tuple[Any, ...], workers: int) -> None:
    """Start `workers` processes running `worker(*args, lock)` and wait; a failed worker is an error. `lock` is one
    lock shared by all of them (for `optimize`)."""
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    lock = context.Lock()
    processes = [context.Process(target=worker, args=(*args, lock), name=f"dlsp-tune-{i}") for i in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise DlspError(f"tuning worker(s) {', '.join(failed)} failed (exit codes "
                        f"{', '.join(str(p.exitcode) for p in processes if p.exitcode != 0)})")


def trials_table(study: Any) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows (number, state, value, params) of every trial, for `format_table`."""
    names = sorted({name for trial in study.trials for name in trial.params})
    rows = [[trial.number, trial.state.name.lower(), trial.value, *[_number_text(trial.params.get(n))
                                                                     for n in names]]
            for trial in study.trials]
    return ["trial", "state", "value", *names], rows


def decoded_params(params: Mapping[str, Any], spec: TuneSpec) -> dict[str, Any]:
    """A trial's parameters as the config sees them (categorical choices are stored JSON-encoded)."""
    categorical = {p.name for p in spec.params if p.type == "categorical"}
    return {name: json.loads(value) if name in categorical else value for name, value in params.items()}


def _number_text(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def write_plots(study: Any, out: str | os.PathLike[str]) -> list[Path]:
    """Optimisation history and parameter importances as PNGs in `out` (importances need 2+ complete trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    optuna = _require_optuna()
    from optuna.visualization import matplotlib as vis

    written = []
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    plots = [("history.png", vis.plot_optimization_history)]
    if len(complete) >= 2 and len(study.best_trial.params) >= 1:
        plots.append(("importance.png", vis.plot_param_importances))
    for name, plot in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
            axes = plot(study)
        figure = axes.figure if hasattr(axes, "figure") else axes
        figure.set_size_inches(8, 4.5)
        figure.tight_layout()
        path = Path(out) / name
        with atomic_path(path, suffix=".png") as tmp:
            figure.savefig(tmp, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _param(name: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, Mapping) or spec.get("type") not in PARAM_TYPES:
        raise DlspError(f"{where}: needs type float, int or categorical")
    kind = spec["type"]
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
    unknown = set(spec) - allowed
    if unknown:
        raise DlspError(f"{where}: unknown key {sorted(unknown)[0]!r} for a {kind} parameter")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise DlspError(f"{where}: a categorical parameter needs a non-empty list of choices")
        return Param(name, kind, choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or not low < high:
        raise DlspError(f"{where}: needs numbers low < high, got low={low!r}, high={high!r}")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if log and low <= 0:
        raise DlspError(f"{where}: a log-scaled parameter needs low > 0")
    if log and step is not None:
        raise DlspError(f"{where}: use either log or step, not both")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
        raise DlspError(f"{where}: an int parameter needs whole low and high")
    return Param(name, kind, float(low), float(high), log, None if step is None else float(step))


def _redacted(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else url
    return url


def _require_optuna() -> ModuleType:
    try:
        return importlib.import_module("optuna")
    except ImportError:
        raise DlspError("tuning needs the optuna package: pip install 'dlsp[tune]'") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]

"""Experiment trackers: where a run's parameters, per-epoch metrics, final results and artifacts also go.

The run folder (config.yaml, metrics.jsonl, results.json, plots) is always written by the task; a tracker sends the
same things to an experiment tracker as well:
- `mlflow`: MLflow through its client API (no process-wide active run), by default into a SQLite backend store
  `mlflow.db` beside the run folder, with artifacts in `mlartifacts/` there; `uri` names any other store or a
  tracking server. Needs `pip install 'dlsp[track]'`.
- `wandb`: Weights & Biases in offline mode by default (no network, no account: `wandb sync` uploads later), files
  under the run folder's `wandb/`. `uri="online"` logs online.

Both packages are imported only when their tracker is made. `make_tracker(None, ...)` returns a tracker that does
nothing, so tasks call the tracker unconditionally.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypeVar

from dlsp.errors import DlspError
from dlsp.fileio import ensure_dir

TRACKERS = ("mlflow", "wandb")
EXPERIMENT = "dlsp"
T = TypeVar("T")


class Tracker(Protocol):
    """What a task reports during a run."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """A file, or a folder with its files."""
        ...

    def finish(self, results: Mapping[str, Any] | None = None, failed: bool = False) -> None: ...


class NullTracker:
    """Tracks nothing (the run folder alone)."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        pass

    def finish(self, results: Mapping[str, Any] | None = None, failed: bool = False) -> None:
        pass


class MlflowTracker:
    """One MLflow run in experiment `experiment` of the store at `uri`."""

    def __init__(self, run_dir: str | os.PathLike[str], uri: str | None = None, run_name: str | None = None,
                 experiment: str = EXPERIMENT) -> None:
        run_dir = Path(run_dir).resolve()
        tracking = _require("mlflow.tracking", "mlflow")
        if uri is None:
            ensure_dir(run_dir.parent)
        self.uri = uri or f"sqlite:///{run_dir.parent / 'mlflow.db'}"
        try:
            self.client = tracking.MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(
                experiment, artifact_location=(run_dir.parent / "mlartifacts").as_uri())
            self.run_id = self.client.create_run(experiment_id, run_name=run_name or run_dir.name).info.run_id
        except Exception as exc:  # MLflow raises many types for an unreachable or broken store
            raise DlspError(f"cannot use the MLflow store {self.uri} ({_first_line(exc)})") from None

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten(params)
        # MLflow caps a batch at 100 parameters and a value at 6000 characters.
        items = [Param(key, str(value)[:6000]) for key, value in flat.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, float(value), now, int(step)) for key, value in _numbers(metrics).items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
        else:
            self.client.log_artifact(self.run_id, str(path))

    def finish(self, results: Mapping[str, Any] | None = None, failed: bool = False) -> None:
        for key, value in _numbers(flatten(results or {})).items():
            self.client.set_tag(self.run_id, f"result.{key}", repr(value))
            self.client.log_metric(self.run_id, f"final/{key}", float(value))
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


class WandbTracker:
    """One Weights & Biases run, offline unless `uri == "online"`."""

    def __init__(self, run_dir: str | os.PathLike[str], uri: str | None = None, run_name: str | None = None,
                 experiment: str = EXPERIMENT) -> None:
        if uri not in (None, "offline", "online"):
            raise DlspError(f"--track-uri for wandb is 'offline' or 'online', got {uri!r}")
        wandb = _require("wandb", "wandb")
        run_dir = ensure_dir(Path(run_dir).resolve())
        try:
            self.run = wandb.init(project=experiment, name=run_name or run_dir.name, dir=str(run_dir),
                                  mode=uri or "offline", reinit="create_new",
                                  settings=wandb.Settings(silent=True, console="off"))
        except Exception as exc:  # wandb raises its own types (e.g. UsageError)
            raise DlspError(f"cannot start a wandb run ({_first_line(exc)})") from None

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.run.config.update(dict(params), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(_numbers(metrics), step=int(step))

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        pattern = path / "*" if path.is_dir() else path
        self.run.save(str(pattern), base_path=str(path.parent), policy="end")

    def finish(self, results: Mapping[str, Any] | None = None, failed: bool = False) -> None:
        for key, value in flatten(results or {}).items():
            self.run.summary[key] = value
        self.run.finish(exit_code=1 if failed else 0)
        # The run log is written by wandb's service process; shutting it down is what flushes it to disk.
        import wandb

        wandb.teardown()


def tracked_run(tracker: Tracker | None, train: Callable[[Tracker], T], out: str | os.PathLike[str],
                artifacts: Sequence[str], results: Callable[[T], Mapping[str, Any] | None]) -> T:
    """`train(tracker)`, then the run files of `out` matching `artifacts` (names or glob patterns; those that
    exist) go to the tracker and it finishes with `results(value)`; if training raises, it finishes as failed.

    Every training ends this way (`dlsp.train.run.train_in_folder`, vision studies), so a tracked run never stays
    open or loses its files.
    """
    tracker = tracker or NullTracker()
    try:
        value = train(tracker)
    except BaseException:
        tracker.finish(failed=True)
        raise
    out = Path(out)
    for pattern in artifacts:
        for path in sorted(out.glob(pattern)):
            tracker.log_artifact(path)
    tracker.finish(results(value))
    return value


def read_results(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run folder's results.json, or None if the run wrote none."""
    import json

    path = Path(out) / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def make_tracker(kind: str | None, run_dir: str | os.PathLike[str], uri: str | None = None,
                 run_name: str | None = None) -> Tracker:
    """The tracker named `kind` (`None`, `mlflow` or `wandb`) for the run folder `run_dir`."""
    if kind is None or kind == "none":
        return NullTracker()
    if kind == "mlflow":
        return MlflowTracker(run_dir, uri, run_name)
    if kind == "wandb":
        return WandbTracker(run_dir, uri, run_name)
    raise DlspError(f"unknown tracker {kind!r} (use {' or '.join(TRACKERS)})")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: `{"train": {"lr": 1e-3}} -> {"train.lr": 1e-3}`."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _numbers(mapping: Mapping[str, Any]) -> dict[str, float]:
    """The finite real numbers of a mapping (bools and strings are not metrics)."""
    return {key: float(value) for key, value in mapping.items()
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)}


def _require(module: str, extra_package: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DlspError(f"--track {extra_package} needs the {extra_package} package: "
                        "pip install 'dlsp[track]'") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]

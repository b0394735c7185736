"""dlsp.train.tracking: MLflow and wandb trackers fed by the training loop, read back for real."""

from __future__ import annotations

import sys

import pytest
import torch

from dlsp.errors import DlspError
from dlsp.train.loop import fit
from dlsp.train.tracking import NullTracker, flatten, make_tracker, read_results, tracked_run

PARAMS = {"model": {"name": "linear", "args": {"hidden": [8]}}, "train": {"lr": 1e-3, "epochs": 3}}


def tiny_fit(tracker, epochs: int = 3):
    """Fit a 2-parameter regression for `epochs` epochs, reporting to `tracker`."""
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    x = torch.linspace(-1, 1, 32)[:, None]
    y = 3 * x + 1

    def step(m, batch):
        return torch.mean((m(batch[0]) - batch[1]) ** 2)

    return fit(model, step, torch.optim.SGD(model.parameters(), lr=0.1), lambda epoch: [(x, y)],
               lambda: [(x, y)], epochs=epochs, progress=False, tracker=tracker)


def test_flatten_joins_nested_keys():
    assert flatten(PARAMS) == {"model.name": "linear", "model.args.hidden": [8], "train.lr": 1e-3,
                               "train.epochs": 3}


class RecordingTracker(NullTracker):
    def __init__(self):
        self.artifacts, self.finished = [], []

    def log_artifact(self, path):
        self.artifacts.append(path.name)

    def finish(self, results=None, failed=False):
        self.finished.append((results, failed))


def test_tracked_run_logs_the_files_that_exist_then_finishes(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "results.json").write_text('{"score": 1.5}')
    tracker = RecordingTracker()
    value = tracked_run(tracker, lambda t: (t is tracker, 7), tmp_path, ("best.pt", "*.png", "curves.png"),
                        lambda v: {**read_results(tmp_path), "value": v[1]})
    assert value == (True, 7)
    assert tracker.artifacts == ["best.pt", "a.png", "b.png"]
    assert tracker.finished == [({"score": 1.5, "value": 7}, False)]
    assert read_results(tmp_path / "missing") is None


def test_tracked_run_finishes_as_failed_when_training_raises(tmp_path):
    tracker = RecordingTracker()

    def train(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tracked_run(tracker, train, tmp_path, ("best.pt",), lambda v: {})
    assert tracker.finished == [(None, True)] and tracker.artifacts == []
    assert tracked_run(None, lambda t: isinstance(t, NullTracker), tmp_path, (), lambda v: None)


def test_no_tracker_and_unknown_trackers():
    assert isinstance(make_tracker(None, "run"), NullTracker)
    with pytest.raises(DlspError, match="unknown tracker 'tensorboard'"):
        make_tracker("tensorboard", "run")


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    for name in ("mlflow", "mlflow.tracking", "wandb"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    for kind in ("mlflow", "wandb"):
        with pytest.raises(DlspError, match=rf"--track {kind} needs .* pip install 'dlsp\[track\]'"):
            make_tracker(kind, tmp_path / "run")


def test_mlflow_round_trip_through_its_sqlite_store(tmp_path):
    pytest.importorskip("mlflow", reason="needs mlflow (pip install 'dlsp[track]')")
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "runs" / "first"
    run_dir.mkdir(parents=True)
    tracker = make_tracker("mlflow", run_dir)
    tracker.log_params(PARAMS)
    result = tiny_fit(tracker)
    (run_dir / "results.json").write_text('{"val_loss": 0.5}')
    tracker.log_artifact(run_dir / "results.json")
    tracker.finish({"val_loss": result.best_val_loss, "model": "linear"})

    assert (tmp_path / "runs" / "mlflow.db").is_file()  # the default store sits beside the run folders
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert run.data.params["train.lr"] == "0.001" and run.data.params["model.args.hidden"] == "[8]"
    history = client.get_metric_history(tracker.run_id, "train_loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert [m.value for m in history] == pytest.approx([r["train_loss"] for r in result.history])
    assert run.data.metrics["final/val_loss"] == pytest.approx(result.best_val_loss)
    assert [a.path for a in client.list_artifacts(tracker.run_id)] == ["results.json"]


def test_mlflow_store_that_cannot_be_opened_is_one_clear_error(tmp_path):
    pytest.importorskip("mlflow", reason="needs mlflow (pip install 'dlsp[track]')")
    (tmp_path / "not_a_folder").write_text("x")
    with pytest.raises(DlspError, match="cannot use the MLflow store"):
        make_tracker("mlflow", tmp_path / "run", uri=f"sqlite:///{tmp_path / 'not_a_folder' / 'mlflow.db'}")


def test_wandb_offline_run_records_metrics_without_network(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="needs wandb (pip install 'dlsp[track]')")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tracker = make_tracker("wandb", run_dir)
    tracker.log_params(PARAMS)
    tiny_fit(tracker)
    tracker.finish({"val_loss": 0.25})
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = next(runs[0].glob("run-*.wandb")).read_bytes()
    # The run log holds the per-epoch history, the config and the summary (protobuf records with JSON values).
    assert b"train_loss" in records and b"val_loss" in records and b"0.001" in records
    with pytest.raises(DlspError, match="'offline' or 'online'"):
        make_tracker("wandb", run_dir, uri="http://example.org")

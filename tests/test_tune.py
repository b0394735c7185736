"""dlsp.experiments.tuning and `dlsp tune`: search spaces, pruning, journal and PostgreSQL studies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from dlsp.config import apply_overrides, load_config
from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.errors import DlspError
from dlsp.experiments import registry
from dlsp.experiments.tuning import PruningTracker, TuneJob, parse_tune_section, suggest_overrides, tune
from dlsp.train.loop import fit

optuna = pytest.importorskip("optuna", reason="tuning needs optuna (pip install 'dlsp[tune]')")

SPACE = {
    "metric": "val_loss",
    "params": {
        "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "train.batch_size": {"type": "int", "low": 4, "high": 16, "step": 4},
        "model.args.hidden": {"type": "categorical", "choices": [[8], [16, 8]]},
    },
}
TINY = {"model": {"name": "linear", "args": {"hidden": [8], "context": 1}}, "stft": {"n_fft": 128, "hop_length": 64},
        "data": {"segment_seconds": 0.5, "sample_rate": 8000}, "train": {"device": "cpu", "patience": None}}


def write_recipe(path: Path, tune_section=SPACE, **extra) -> Path:
    path.write_text(yaml.safe_dump({"task": "denoise", **TINY, **extra, "tune": tune_section}))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_synthetic_corpus(tmp_path_factory.mktemp("synth") / "c", seed=2, n_speakers=5,
                                 utterances_per_speaker=2, noise_files_per_kind=3, noise_seconds=2.0,
                                 progress=False)


def test_search_space_is_checked_key_by_key():
    spec = parse_tune_section(SPACE)
    assert [p.type for p in spec.params] == ["float", "int", "categorical"] and spec.pruner == "median"
    bad = [
        ({"params": {}}, "declare at least one"),
        ({"params": {"train.lr": {"low": 0, "high": 1}}}, "needs type float"),
        ({"params": {"train.lr": {"type": "float", "low": 1, "high": 1}}}, "low < high"),
        ({"params": {"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}}, "low > 0"),
        ({"params": {"train.lr": {"type": "float", "low": 1, "high": 2, "lg": True}}}, "unknown key 'lg'"),
        ({"params": {"a": {"type": "categorical", "choices": []}}}, "non-empty list"),
        ({"params": {"a": {"type": "int", "low": 0.5, "high": 2}}}, "whole low and high"),
        ({"direction": "up", "params": SPACE["params"]}, "minimize or maximize"),
        ({"pruner": "random", "params": SPACE["params"]}, "pruner"),
        ({"metrc": "x", "params": SPACE["params"]}, "unknown key 'metrc'"),
    ]
    for section, message in bad:
        with pytest.raises(DlspError, match=message):
            parse_tune_section(section)


def test_sampled_values_become_overrides_the_config_accepts():
    from dlsp.denoise.train import DenoiseConfig

    spec = parse_tune_section(SPACE)
    trial = optuna.trial.FixedTrial({"train.lr": 3e-3, "train.batch_size": 12, "model.args.hidden": "[16, 8]"})
    overrides = suggest_overrides(trial, spec)
    assert overrides == ["train.lr=0.003", "train.batch_size=12", "model.args.hidden=[16, 8]"]
    config = apply_overrides(DenoiseConfig(), overrides)
    assert (config.train.lr, config.train.batch_size, config.model.args["hidden"]) == (3e-3, 12, [16, 8])


class FakeTrial:
    def __init__(self, prune_after: int) -> None:
        self.reports, self.prune_after = [], prune_after

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) > self.prune_after


def test_pruning_tracker_reports_every_epoch_and_stops_a_pruned_trial():
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    x = torch.ones(8, 1)
    trial = FakeTrial(prune_after=2)
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 3"):
        fit(model, lambda m, b: torch.mean((m(b) - 2) ** 2), torch.optim.SGD(model.parameters(), lr=0.1),
            lambda epoch: [x], lambda: [x], epochs=10, progress=False, tracker=PruningTracker(trial, "val_loss"))
    assert [step for step, _ in trial.reports] == [0, 1, 2]
    with pytest.raises(DlspError, match=r"tune\.metric 'val_eer' is not reported"):
        PruningTracker(FakeTrial(9), "val_eer").log_metrics({"val_loss": 1.0}, 0)


class SlowCountStudy:
    """A study whose trial count takes 0.1 s to come back: the window in which unlocked workers would race."""

    def __init__(self, study):
        self.study = study

    def get_trials(self, **kwargs):
        import time

        trials = self.study.get_trials(**kwargs)
        time.sleep(0.1)
        return trials

    def __getattr__(self, name):
        return getattr(self.study, name)


@pytest.mark.parametrize("shared_lock", [True, False])
def test_workers_sharing_a_lock_run_exactly_the_trial_budget(tmp_path, shared_lock):
    import threading

    from dlsp.experiments.tuning import optimize

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    spec = parse_tune_section({"metric": "val_loss", "params": {"train.lr": {"type": "float", "low": 0.1,
                                                                            "high": 1.0}}})
    start = threading.Barrier(4)
    lock = threading.Lock() if shared_lock else None

    def worker():
        start.wait()  # all four ask for their first trials at once
        optimize(SlowCountStudy(study), spec, lambda overrides, trial_dir, tracker: 1.0, tmp_path, 2, lock)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = sorted(t.number for t in study.trials)
    if shared_lock:
        assert numbers == [0, 1] and all(t.state.name == "COMPLETE" for t in study.trials)
    else:  # without the lock, all four see room at once and each takes a trial (why `tune` shares one)
        assert len(numbers) == 4


def test_tune_in_process_writes_results_and_the_best_config(tmp_path, corpus):
    recipe = write_recipe(tmp_path / "search.yaml")
    job = TuneJob(recipe=str(recipe), out=str(tmp_path / "out"), trials=3, study="search", quick=True, seed=0,
                  inputs={"clean": [str(corpus / "speech")], "noise": [str(corpus / "noise")]})
    study = tune(job)
    assert len(study.trials) == 3
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    best = min((t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"),
               key=lambda t: t.value)
    assert results["best_trial"] == best.number and results["best_value"] == pytest.approx(best.value)
    from dlsp.denoise.train import DenoiseConfig

    config = load_config(DenoiseConfig, tmp_path / "out" / "best_config.yaml")
    assert config.train.lr == pytest.approx(results["best_params"]["train.lr"])
    assert config.model.args["hidden"] == results["best_params"]["model.args.hidden"]
    for trial in study.trials:
        assert (tmp_path / "out" / f"trial_{trial.number:04d}" / "config.yaml").exists()
    # A rerun with more trials joins the same journal study instead of starting over.
    assert len(tune(TuneJob(**{**job.__dict__, "trials": 4})).trials) == 4


def test_two_worker_processes_share_a_journal_study(tmp_path, corpus, cli):
    recipe = write_recipe(tmp_path / "search.yaml")
    code, out, err = cli("tune", recipe, "--trials", "4", "--workers", "2", "--quick", "--seed", "1",
                         "--input", f"clean={corpus / 'speech'}", "--input", f"noise={corpus / 'noise'}",
                         "--out", tmp_path / "out", "--report")
    assert code == 0, err
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "out" / "study.journal")))
    trials = optuna.load_study(study_name="search", storage=storage).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # every trial recorded once
    assert sorted(p.name for p in (tmp_path / "out").glob("trial_*")) == [f"trial_{n:04d}" for n in range(4)]
    assert "best: trial" in out and (tmp_path / "out" / "history.png").stat().st_size > 0


@pytest.mark.skipif(not os.environ.get("DLSP_TEST_POSTGRES_URL"),
                    reason="no PostgreSQL server (.ci/run starts one and sets DLSP_TEST_POSTGRES_URL)")
def test_two_workers_share_a_postgresql_study(tmp_path, corpus, cli):
    url = os.environ["DLSP_TEST_POSTGRES_URL"]
    study = f"pg_{os.getpid()}_{tmp_path.name}"
    recipe = write_recipe(tmp_path / "search.yaml")
    code, out, err = cli("tune", recipe, "--trials", "4", "--workers", "2", "--quick", "--storage", url,
                         "--study", study, "--input", f"clean={corpus / 'speech'}",
                         "--input", f"noise={corpus / 'noise'}", "--out", tmp_path / "out")
    assert code == 0, err
    loaded = optuna.load_study(study_name=study, storage=url)
    assert sorted(t.number for t in loaded.trials) == [0, 1, 2, 3]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["best_trial"] == loaded.best_trial.number and f"best: trial {loaded.best_trial.number}" in out


def test_bad_tuning_requests_are_one_clear_line(tmp_path, corpus, cli):
    inputs = ["--input", f"clean={corpus / 'speech'}", "--input", f"noise={corpus / 'noise'}"]
    no_tune = tmp_path / "plain.yaml"
    no_tune.write_text(yaml.safe_dump(TINY))
    typo = write_recipe(tmp_path / "typo.yaml", {"params": {"train.lrr": {"type": "float", "low": 0.1, "high": 1}}})
    cases = [
        (["tune", no_tune, "--trials", "2", *inputs], "no 'tune:' section"),
        (["tune", typo, "--trials", "2", *inputs], "tune.params: unknown key 'train.lrr' (did you mean 'lr'"),
        (["tune", write_recipe(tmp_path / "ok.yaml"), "--trials", "2", "--input", "speech=x"], "no input 'speech'"),
        (["tune", tmp_path / "ok.yaml", "--trials", "2", *inputs, "--storage",
          "postgresql+psycopg://nobody:secret@127.0.0.1:9/none"], "cannot open tuning storage"),
        (["tune", tmp_path / "ok.yaml", "--trials", "2", *inputs, "--storage",
          "postgress://nobody:secret@127.0.0.1:9/none"], "not a database URL"),
    ]
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({"task": "juggle", "tune": SPACE}))
    cases.append((["tune", tmp_path / "task.yaml", "--trials", "2"], "unknown task 'juggle'"))
    (tmp_path / "vision.yaml").write_text(yaml.safe_dump({"task": "vision", "tune": SPACE}))
    cases.append((["tune", tmp_path / "vision.yaml", "--trials", "2"], "vision recipes cannot be tuned"))
    for argv, message in cases:
        code, _, err = cli(*argv, "--out", tmp_path / "o")
        assert code == 2 and message in err, err
        assert err.count("\n") == 1 and "secret" not in err
    assert registry.get_task("denoise").name == "denoise"


def test_missing_or_unreadable_data_fails_once_before_any_trial(tmp_path, cli, monkeypatch):
    import dataclasses

    def never(*args, **kwargs):
        raise AssertionError("a trial trained although the data is missing")

    monkeypatch.setitem(registry.TASKS, "denoise", dataclasses.replace(registry.TASKS["denoise"], train=never))
    recipe = write_recipe(tmp_path / "search.yaml")
    for name in ("speech", "noise"):
        (tmp_path / name).mkdir()
    cases = [
        ([], "training data missing: give --input pairs=PATH (clean/noisy pair layout), or --input clean=PATH"),
        (["--workers", "2"], "training data missing"),  # before any worker process starts
        (["--input", f"clean={tmp_path / 'speech'}"], "training data missing"),
        (["--input", f"clean={tmp_path / 'nope'}", "--input", f"noise={tmp_path / 'noise'}"],
         f"{tmp_path / 'nope'}: does not exist (the clean input)"),
        # Present but empty: the data loads once, before the first trial, instead of failing in each.
        (["--input", f"clean={tmp_path / 'speech'}", "--input", f"noise={tmp_path / 'noise'}"], "no audio files"),
    ]
    for index, (flags, message) in enumerate(cases):
        out = tmp_path / f"out{index}"
        code, stdout, err = cli("tune", recipe, "--trials", "6", *flags, "--out", out)
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert stdout == "" and not list(out.glob("trial_*"))

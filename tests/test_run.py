"""`dlsp run` and dlsp.experiments (registry, runner): any recipe into a run folder, seeds, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.errors import DlspError
from dlsp.experiments.registry import get_task, parse_inputs, recipe_task

TINY = {"task": "denoise", "model": {"name": "linear", "args": {"hidden": [8], "context": 1}},
        "stft": {"n_fft": 128, "hop_length": 64}, "data": {"segment_seconds": 0.5, "sample_rate": 8000},
        "train": {"device": "cpu", "patience": None}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_synthetic_corpus(tmp_path_factory.mktemp("synth") / "c", seed=4, n_speakers=5,
                                 utterances_per_speaker=2, noise_files_per_kind=3, noise_seconds=2.0,
                                 progress=False)


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def losses(run) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_inputs_are_checked_against_the_task():
    task = get_task("denoise")
    assert parse_inputs(task, ["clean=a", "clean=b", "noise=n", "cache=c"]) == {
        "clean": ["a", "b"], "noise": ["n"], "cache": "c"}
    with pytest.raises(DlspError, match="no input 'speech'"):
        parse_inputs(task, ["speech=a"])
    with pytest.raises(DlspError, match="given twice"):
        parse_inputs(task, ["pairs=a", "pairs=b"])
    with pytest.raises(DlspError, match="must look like name=path"):
        parse_inputs(task, ["pairs"])
    assert recipe_task({}).name == "denoise"  # recipes without task: are denoising recipes
    with pytest.raises(DlspError, match="unknown task 'juggle'"):
        recipe_task({"task": "juggle"})


def test_same_seed_same_losses_bit_for_bit_and_another_seed_differs(recipe, corpus, tmp_path, cli):
    inputs = ["--input", f"clean={corpus / 'speech'}", "--input", f"noise={corpus / 'noise'}"]
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, out, err = cli("run", recipe, *inputs, "--out", tmp_path / name, "--quick", "--quiet", "--seed", seed)
        assert code == 0, err
        assert out.startswith("denoise: 2 epochs")
        # One epoch numbering for people: the printed best epoch is results.json's (both count from 1).
        best = json.loads((tmp_path / name / "results.json").read_text())["best_epoch"]
        assert best in (1, 2) and f"best epoch {best}:" in out and f'"best_epoch": {best}' in out
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    assert losses(tmp_path / "a") != losses(tmp_path / "c")
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["train"]["seed"] == 3


def test_existing_run_folder_needs_resume_or_overwrite(recipe, corpus, tmp_path, cli):
    inputs = ["--input", f"clean={corpus / 'speech'}", "--input", f"noise={corpus / 'noise'}"]
    run = tmp_path / "run"
    assert cli("run", recipe, *inputs, "--out", run, "--quick", "--quiet")[0] == 0
    code, _, err = cli("run", recipe, *inputs, "--out", run, "--quick", "--quiet")
    assert code == 2 and "use --resume to continue it or --overwrite" in err and err.count("\n") == 1
    code, _, err = cli("run", recipe, *inputs, "--out", run, "--quick", "--quiet", "--resume",
                       "--set", "train.epochs=3")
    assert code == 0, err
    assert len(losses(run)) == 3  # two epochs kept, one more trained
    # The change to the run's own config is said, not silently taken.
    assert "resuming with a config that differs from the run's (config.yaml now records the new one): " \
           "train.epochs 2 -> 3" in err and err.startswith("dlsp: warning: "), err
    code, _, err = cli("run", recipe, *inputs, "--out", run, "--quick", "--quiet", "--overwrite")
    assert code == 0, err
    assert len(losses(run)) == 2


def test_bad_run_requests_are_one_clear_line(recipe, corpus, tmp_path, cli):
    cases = [
        (["--input", f"clean={corpus / 'speech'}", "--set", "train.lrr=1"], "unknown key 'train.lrr'"),
        (["--data", tmp_path / "missing"], "does not exist"),
        (["--input", "speech=x"], "no input 'speech'"),
        ([], "training data missing"),
    ]
    (tmp_path / "file.txt").write_text("x")
    cases.append((["--input", f"clean={corpus / 'speech'}", "--input", f"noise={corpus / 'noise'}", "--out",
                   tmp_path / "file.txt" / "run"], f"{tmp_path / 'file.txt' / 'run'}: cannot be written"))
    for extra, message in cases:
        code, _, err = cli("run", recipe, "--out", tmp_path / "r", "--quick", "--quiet", *extra)
        assert code == 2 and message in err, err
        assert err.count("\n") == 1


def test_a_classify_recipe_runs_with_data(tmp_path, cli):
    from dlsp.classify.toy import write_toy_dataset

    write_toy_dataset(tmp_path / "toy", per_class=6)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "classify_mlp.yaml"  # as a user would run it
    args = ["run", recipe, "--data", tmp_path / "toy", "--out", tmp_path / "runs" / "mlp", "--quick", "--quiet",
            "--input", f"cache={tmp_path / 'cache'}"]
    code, out, err = cli(*args)
    assert code == 0, err
    assert out.startswith("classify: 2 epochs") and "val_accuracy" in out
    best = json.loads((tmp_path / "runs" / "mlp" / "results.json").read_text())["best_epoch"]
    assert best in (1, 2) and f"best epoch {best}:" in out
    assert (tmp_path / "runs" / "mlp" / "best.pt").exists()


def test_a_speaker_recipe_runs_with_data(corpus, tmp_path, cli):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "speaker_siamese_bce.yaml"
    code, out, err = cli("run", recipe, "--data", corpus / "speech", "--input", "format=speakers", "--out",
                         tmp_path / "spk", "--quick", "--quiet", "--set", "model.args={hidden: 16, embedding_dim: 8}",
                         "--set", "data.val_fraction=0.4", "--set", "data.test_speakers=[]",
                         "--set", "data.val_speakers=[]")
    assert code == 0, err
    assert out.startswith("speaker: 2 epochs") and "val_eer" in out
    assert (tmp_path / "spk" / "best.pt").exists()


def test_a_vision_recipe_runs_quick_on_the_embedded_digits(tmp_path, cli):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "vision_cifar_augment.yaml"
    out_dir = tmp_path / "vision"
    code, out, err = cli("run", recipe, "--out", out_dir, "--quick", "--quiet", "--set", "train.epochs=2")
    assert code == 0, err
    assert out.startswith("vision: study finished") and "test_accuracy" in out
    results = json.loads((out_dir / "results.json").read_text())
    assert 0 <= results["test_accuracy"] <= 1
    config = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert config["data"]["source"] == "digits" and config["train"]["epochs"] == 2  # --set wins over --quick
    for extra in (["--resume"], ["--nproc", "2"]):
        code, _, err = cli("run", recipe, "--out", tmp_path / "again", "--quick", *extra)
        assert code == 2 and "run as one process from the start" in err and err.count("\n") == 1, err


def test_a_run_killed_mid_training_resumes_to_the_uninterrupted_result(recipe, corpus, tmp_path):
    """kill -9 after some epochs, then --resume: no finished epoch is lost and the losses match a run that was
    never interrupted (same seed), epoch by epoch."""
    import os
    import signal
    import subprocess
    import sys
    import time

    def command(out, *extra):
        return [sys.executable, "-m", "dlsp", "run", str(recipe), "--input", f"clean={corpus / 'speech'}",
                "--input", f"noise={corpus / 'noise'}", "--out", str(out), "--quiet", "--set", "train.epochs=4",
                "--set", "data.segments_per_epoch=64", "--set", "data.val_segments=16",
                "--set", "train.batch_size=16", *extra]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert subprocess.run(command(whole), env=env, capture_output=True, timeout=600).returncode == 0
    process = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        metrics = killed / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    kept = len(losses(killed))
    assert 2 <= kept < 4
    done = subprocess.run(command(killed, "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(losses(killed)) == 4
    assert losses(killed) == pytest.approx(losses(whole), rel=1e-4)
    assert json.loads((killed / "results.json").read_text())["epochs"] == 4

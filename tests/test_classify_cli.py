"""`dlsp classify train/eval/predict/study-optimizers` on a toy GTZAN-layout folder the test writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlsp.classify.toy import toy_clip, write_toy_dataset

# Small, fast features for 1 s clips at 8 kHz cut into 2 segments: 2 x 13 x 32.
FAST = ["--set", "features.n_fft=256", "--set", "features.hop_length=64", "--set", "features.n_mels=40",
        "--set", "features.n_segments=2", "--set", "features.segment_seconds=0.5", "--set", "train.lr=3e-3",
        "--set", "data.test_fraction=0.25", "--set", "data.val_fraction=0.2", "--quiet"]


@pytest.fixture(scope="module")
def genres(tmp_path_factory):
    root = tmp_path_factory.mktemp("gtzan")
    write_toy_dataset(root, per_class=8, seconds=1.0, genres_folder=True)
    return root


@pytest.fixture(scope="module")
def trained(genres, tmp_path_factory):
    """A run folder of an mlp trained by the CLI (module-scoped: shared by the eval and predict tests)."""
    from dlsp.cli import main

    out = tmp_path_factory.mktemp("runs") / "mlp"
    cache = tmp_path_factory.mktemp("cache")
    code = main(["classify", "train", "--data", str(genres), "--model", "mlp", "--out", str(out), "--epochs", "15",
                 "--cache", str(cache), *FAST])
    assert code == 0
    return out, cache


def test_train_writes_the_run_folder(trained):
    out, _ = trained
    for name in ("config.yaml", "metrics.jsonl", "best.pt", "last.pt", "curves.png", "splits.json", "results.json",
                 "confusion.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["clips"] == 6 and results["test"]["clip_accuracy"] >= 0.8
    splits = json.loads((out / "splits.json").read_text())
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["val"]) & set(splits["test"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == results["epochs"]


def test_eval_scores_the_runs_test_clips(cli, trained, genres, tmp_path):
    out, cache = trained
    code, stdout, stderr = cli("classify", "eval", out, "--data", genres, "--json", tmp_path / "s.json",
                               "--cache", cache, "--quiet")
    assert code == 0, stderr
    assert "6 clips (test split" in stdout
    scores = json.loads((tmp_path / "s.json").read_text())
    assert {"accuracy", "clip_accuracy", "macro_f1"} <= set(scores)
    assert scores["clips"] == 6 and scores["segments"] == 12
    results = json.loads((out / "results.json").read_text())
    assert scores["clip_accuracy"] == pytest.approx(results["test"]["clip_accuracy"])
    assert (out / "eval" / "confusion.png").is_file()
    code, stdout, _ = cli("classify", "eval", out, "--data", genres, "--split", "all", "--no-cache", "--quiet")
    assert code == 0 and "24 clips (all of" in stdout


def test_predict_prints_the_top_three(cli, trained, tmp_path, write_wav):
    out, _ = trained
    rng = np.random.default_rng(7)
    tone = write_wav("q/tone.wav", toy_clip("tone", 1.0, 8000, rng), 8000)
    noise = write_wav("q/noise.wav", toy_clip("noise", 1.0, 16000, rng), 16000)  # resampled to the model's rate
    code, stdout, stderr = cli("classify", "predict", out, tone, noise)
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert len(lines) == 2
    for line, expected in zip(lines, ("tone", "noise"), strict=True):
        ranked = line.split(": ", 1)[1].split(", ")
        assert len(ranked) == 3 and ranked[0].startswith(expected)
        probs = [float(part.split()[1]) for part in ranked]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=2e-3)


def test_predict_skips_and_lists_a_bad_file_and_exits_1(cli, trained, tmp_path, write_wav):
    out, _ = trained
    good = write_wav("g.wav", toy_clip("chirp", 1.0, 8000, np.random.default_rng(1)), 8000)
    (tmp_path / "empty.wav").write_bytes(b"")
    code, stdout, stderr = cli("classify", "predict", out, tmp_path / "missing.wav", good, tmp_path / "empty.wav")
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in stderr
    assert "missing.wav" in lines[0] and "skipped" in lines[0] and "empty.wav" in lines[1]
    assert "2 of 3 files skipped" in lines[2]
    assert stdout.startswith(str(good)) and len(stdout.strip().splitlines()) == 1


def test_predict_a_single_bad_file_is_an_error(cli, trained, tmp_path):
    out, _ = trained
    code, stdout, stderr = cli("classify", "predict", out, tmp_path / "missing.wav")
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and "missing.wav" in stderr and "error" in stderr


def test_predict_with_no_good_file_exits_2(cli, trained, tmp_path):
    out, _ = trained
    code, stdout, stderr = cli("classify", "predict", out, tmp_path / "a.wav", tmp_path / "b.wav")
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 3 and "a.wav" in lines[0] and "b.wav" in lines[1] and "none of the 2 files" in lines[2]


def test_resume_continues_the_run(cli, genres, tmp_path):
    out = tmp_path / "run"
    assert cli("classify", "train", "--data", genres, "--model", "mlp", "--out", out, "--epochs", "2",
               "--set", "train.patience=null", "--no-cache", *FAST)[0] == 0
    # An existing run is refused (and left as it was) unless it is continued or started over.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code, _, stderr = cli("classify", "train", "--data", genres, "--model", "mlp", "--out", out, "--no-cache", *FAST)
    assert code == 2 and "use --resume to continue it or --overwrite" in stderr and stderr.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    code, stdout, _ = cli("classify", "train", "--data", genres, "--out", out, "--resume", "--epochs", "4",
                          "--no-cache", "--quiet")
    assert code == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    assert "4 epochs" in stdout
    # The run remembers its data folder: --resume alone continues it.
    code, stdout, stderr = cli("classify", "train", "--out", out, "--resume", "--epochs", "5", "--no-cache",
                               "--quiet")
    assert code == 0, stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 5
    # A new run without data is one line.
    code, _, stderr = cli("classify", "train", "--out", tmp_path / "fresh", "--no-cache")
    assert code == 2 and "training data missing" in stderr and stderr.count("\n") == 1
    code, stdout, _ = cli("classify", "train", "--data", genres, "--model", "mlp", "--out", out, "--overwrite",
                          "--epochs", "1", "--no-cache", *FAST)
    assert code == 0 and "1 epochs" in stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_study_optimizers_writes_plot_and_table(cli, genres, tmp_path):
    code, stdout, stderr = cli("classify", "study-optimizers", "--data", genres, "--seconds", "1",
                               "--out", tmp_path / "study", "--no-cache", *FAST)
    assert code == 0, stderr
    for name in ("optimizers.png", "optimizers.md", "optimizers.json"):
        assert (tmp_path / "study" / name).is_file()
    table = json.loads((tmp_path / "study" / "optimizers.json").read_text())["table"]
    assert [row["batch"] for row in table] == [30, 32, 1]  # full batch = 15 clips x 2 segments
    assert all(row["updates"] >= 1 and row["epochs (passes)"] > 0 for row in table)
    assert "stochastic GD (batch 1)" in stdout


def test_bad_input_is_one_line(cli, tmp_path, write_wav):
    write_wav("one/a/x.wav", toy_clip("tone", 1.0, 8000, np.random.default_rng(0)), 8000)
    code, _, stderr = cli("classify", "train", "--data", tmp_path / "one", "--out", tmp_path / "r", "--no-cache")
    assert code == 2
    assert stderr.startswith("dlsp: error: ") and "classification needs at least 2 classes" in stderr
    assert len(stderr.strip().splitlines()) == 1
    code, _, stderr = cli("classify", "eval", tmp_path / "nothing", "--data", tmp_path / "one")
    assert code == 2 and "model file does not exist" in stderr


@pytest.mark.parametrize("command", [["classify"], ["classify", "train"], ["classify", "eval"],
                                     ["classify", "predict"], ["classify", "study-optimizers"]], ids=" ".join)
def test_help_has_examples(command, capsys):
    from dlsp.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"dlsp {' '.join(command)}" in out


def test_unwritable_outputs_fail_before_any_feature_is_computed(cli, genres, tmp_path, monkeypatch):
    import dlsp.classify.evaluate as evaluate
    import dlsp.classify.train as train

    def never(*args, **kwargs):
        raise AssertionError("features were computed before the outputs were checked")

    monkeypatch.setattr(train, "load_data", never)
    monkeypatch.setattr(evaluate, "evaluate_dataset", never)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, stderr = cli("classify", "train", "--data", genres, "--out", blocker / "run", "--no-cache")
    assert code == 2 and stderr.count("\n") == 1 and f"{blocker / 'run'}: cannot be written" in stderr, stderr
    code, _, stderr = cli("classify", "eval", tmp_path / "run", "--data", genres, "--out", tmp_path / "eval",
                          "--json", blocker / "scores.json")
    assert code == 2 and stderr.count("\n") == 1 and f"{blocker / 'scores.json'}: cannot be written" in stderr
    assert not (tmp_path / "eval").exists()

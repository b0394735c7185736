"""`dlsp vision train|eval` and `dlsp compress`: every study in --quick mode on the embedded digits, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# --quick already shrinks every study to digits; these make the smoke runs faster still.
FAST = ["--quiet", "--set", "train.epochs=6", "--set", "analysis.tsne_samples=60"]


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """One quick MNIST-MLP study run shared by the eval and compress tests."""
    from dlsp.cli import main

    out = tmp_path_factory.mktemp("vision") / "mnist"
    assert main(["vision", "train", str(RECIPES / "vision_mnist_mlp.yaml"), "--quick", "--out", str(out), *FAST]) == 0
    return out


def test_mnist_mlp_quick(mnist_run):
    results = _results(mnist_run)
    assert results["quick"] and results["data"] == "digits" and results["epochs"] == 6
    assert results["test_accuracy"] > 0.5  # chance is 0.1; 6 epochs of a 5 x 128 MLP on 8x8 digits
    assert results["params"] == 64 * 128 + 128 + 4 * (128 * 128 + 128) + 128 * 10 + 10
    assert results["seconds_per_epoch"] > 0
    for name in ("best_examples.png", "pca.png", "tsne.png", "loss.png", "best.pt", "config.yaml", "results.md"):
        assert (mnist_run / name).stat().st_size > 0, name
    assert len((mnist_run / "metrics.jsonl").read_text().splitlines()) == 6
    assert "| mlp" in (mnist_run / "results.md").read_text()


def test_compression_quick(cli, tmp_path):
    out = tmp_path / "lowrank"
    code, stdout, _ = cli("vision", "train", RECIPES / "vision_compression.yaml", "--quick", "--out", out, *FAST)
    assert code == 0, stdout
    results = _results(out)
    assert [r["rank"] for r in results["per_rank"]] == [5, 20, "full"]
    assert results["per_rank"][0]["params"] < results["per_rank"][1]["params"] < results["baseline_params"]
    assert set(results["methods"]) == {"baseline", "svd", "scratch", "svd_finetune"}
    assert results["params"] == results["methods"]["svd_finetune"]["params"] < results["baseline_params"]
    for name in ("accuracy_vs_rank.png", "baseline.pt", "svd_rank20.pt", "scratch_rank20.pt", "best.pt"):
        assert (out / name).exists(), name
    # The compressed model file is smaller and loads through the normal loader.
    from dlsp.vision.model_file import load_classifier

    assert (out / "best.pt").stat().st_size < (out / "baseline.pt").stat().st_size
    assert load_classifier(out / "best.pt").model.get_model_args()["low_rank"]


def test_cifar_augment_quick(cli, tmp_path):
    out = tmp_path / "aug"
    code, stdout, _ = cli("vision", "train", RECIPES / "vision_cifar_augment.yaml", "--quick", "--out", out, *FAST,
                          "--set", "data.train_limit=500")
    assert code == 0, stdout
    results = _results(out)
    variants = results["variants"]
    assert set(variants) == {"original", "augmented_4x", "on_the_fly"}
    assert variants["augmented_4x"]["train_images_per_epoch"] == 4 * variants["original"]["train_images_per_epoch"]
    assert variants["on_the_fly"]["train_images_per_epoch"] == variants["original"]["train_images_per_epoch"]
    for name in ("val_accuracy.png", "augmentations.png", "on_the_fly.png", "best.pt"):
        assert (out / name).stat().st_size > 0, name


def test_ssl_quick_rotnet(cli, tmp_path):
    out = tmp_path / "ssl"
    code, stdout, _ = cli("vision", "train", RECIPES / "vision_ssl_rotnet.yaml", "--quick", "--out", out, *FAST,
                          "--set", "ssl.transfer_epochs=4", "--set", "ssl.eval_every=2")
    assert code == 0, stdout
    results = _results(out)
    assert results["pretext"] == "rotnet" and len(results["pretext_classes"]) == 4
    assert results["pretext_val_accuracy"] > 0.4  # chance 0.25: the pretext task is learnable
    assert results["labelled_images"] == 300 and {"test_accuracy", "scratch_test_accuracy", "gain_points"} <= set(
        results)
    assert (out / "transfer_vs_scratch.png").exists() and (out / "pretext.pt").exists()
    lines = (out / "metrics_transfer.jsonl").read_text().splitlines()
    assert len(lines) == 4

    # Transfer again from the saved pretext model, keeping only its first stage: no pretext training. Over an
    # earlier study (--overwrite): its results and logs go first.
    again = tmp_path / "again"
    again.mkdir()
    (again / "metrics_pretext.jsonl").write_text("{}\n")
    code, stdout, _ = cli("vision", "train", RECIPES / "vision_ssl_rotnet.yaml", "--quick", "--out", again, *FAST,
                          "--set", "ssl.transfer_epochs=2", "--set", f"ssl.pretext_model={out / 'pretext.pt'}",
                          "--set", "ssl.transfer_stages=1", "--overwrite")
    assert code == 0, stdout
    reused = _results(again)
    assert reused["pretext_training"] == {"pretext_model": str(out / "pretext.pt")}
    assert reused["pretext_val_accuracy"] == pytest.approx(results["pretext_val_accuracy"])
    assert reused["transfer_stages"] == 1 and not (again / "metrics_pretext.jsonl").exists()
    # A pretext model of another pretext task or network is refused in one line.
    code, stdout, stderr = cli("vision", "train", RECIPES / "vision_ssl.yaml", "--quick", "--out", tmp_path / "bad",
                               *FAST, "--set", f"ssl.pretext_model={out / 'pretext.pt'}")
    assert code != 0 and "pretext model predicts rotated 0" in stderr and "Traceback" not in stderr


def test_vision_eval(cli, mnist_run):
    code, stdout, _ = cli("vision", "eval", mnist_run, "--json")
    assert code == 0
    figures = json.loads(stdout)
    assert figures["test_accuracy"] == pytest.approx(_results(mnist_run)["test_accuracy"])
    assert sum(map(sum, figures["confusion_matrix"])) == 360
    code, stdout, _ = cli("vision", "eval", mnist_run)
    assert code == 0 and "confusion matrix" in stdout


def test_compress_cli_on_a_vision_model(cli, mnist_run, tmp_path):
    out = tmp_path / "m8.pt"
    code, stdout, err = cli("compress", mnist_run / "best.pt", "--rank", "8", "--finetune", "1", "-o", out,
                            "--quiet")
    assert code == 0, err
    assert "x fewer" in stdout and "after 1 epochs fine-tuning" in stdout
    from dlsp.vision.model_file import load_classifier

    loaded = load_classifier(out)
    assert loaded.model.get_model_args()["low_rank"]["trunk.1"] == 8
    assert loaded.model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_compress_cli_on_a_denoiser(cli, tmp_path):
    from dlsp.audio.stft import StftConfig
    from dlsp.denoise.model_file import load_denoiser, save_denoiser
    from dlsp.models.denoisers import build_denoiser

    stft = StftConfig(n_fft=128, hop_length=32)
    torch.manual_seed(0)
    network = build_denoiser("linear", n_freqs=stft.n_freqs, hidden=[64], context=2).eval()
    source = save_denoiser(tmp_path / "d.pt", network, "linear", sample_rate=8000, stft=stft)
    code, _stdout, err = cli("compress", source, "--rank", "4", "-o", tmp_path / "d4.pt")
    assert code == 0, err
    loaded = load_denoiser(tmp_path / "d4.pt")  # the denoiser loader rebuilds the factorised layers
    assert loaded.sample_rate == 8000
    x = torch.rand(1, stft.n_freqs, 12)
    assert loaded.model(x).shape == network(x).shape
    # Fine-tuning needs a classifier and its data.
    code, _, err = cli("compress", source, "--rank", "4", "--finetune", "2", "-o", tmp_path / "x.pt")
    assert code == 2 and "needs an image classifier" in err


def test_compress_and_train_bad_input(cli, tmp_path, mnist_run):
    code, _, err = cli("compress", tmp_path / "missing.pt", "-o", tmp_path / "o.pt")
    assert code == 2 and "does not exist" in err
    code, _, err = cli("compress", mnist_run / "best.pt", "--rank", "500", "-o", tmp_path / "o.pt")
    assert code == 2 and "gets smaller at rank 500" in err
    code, _, err = cli("vision", "train", RECIPES / "vision_mnist_mlp.yaml", "--out", tmp_path / "r")
    assert code == 2 and "needs a dataset folder" in err
    code, _, err = cli("vision", "train", RECIPES / "vision_mnist_mlp.yaml", "--out", tmp_path / "r",
                       "--data", tmp_path)
    assert code == 2 and "no MNIST IDX files" in err
    code, _, err = cli("vision", "eval", tmp_path)
    assert code == 2 and "not a finished vision run" in err
    # An existing study is refused, and left as it was (--overwrite starts over; a study does not resume).
    before = {p: p.stat().st_mtime_ns for p in mnist_run.rglob("*")}
    code, _, err = cli("vision", "train", RECIPES / "vision_mnist_mlp.yaml", "--quick", "--out", mnist_run)
    assert code == 2 and "not empty; use --overwrite to start over" in err and err.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in mnist_run.rglob("*")} == before
    code, _, err = cli("vision", "train", RECIPES / "vision_mnist_mlp.yaml", "--quick", "--out", tmp_path / "r",
                       "--set", "study=gan")
    assert code == 2 and "unknown study" in err


def test_vision_train_on_an_idx_folder(cli, tmp_path):
    """--data pointing at MNIST-style IDX files (written here) drives a real, tiny run."""
    import numpy as np

    from dlsp.data.image_files import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = (rng.random((n, 28, 28)) * 40 + labels[:, None, None] * 20).astype(np.uint8)
        write_idx(tmp_path / "mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    out = tmp_path / "run"
    code, _stdout, err = cli("vision", "train", RECIPES / "vision_mnist_mlp.yaml", "--data", tmp_path / "mnist",
                            "--out", out, "--quiet", "--epochs", "2", "--set", "model.args={hidden: [16], dropout: 0}",
                            "--set", "analysis.tsne_samples=15", "--set", "analysis.tsne_iterations=250",
                            "--set", "train.threads=1")
    assert code == 0, err
    results = _results(out)
    assert results["data"] == "mnist" and results["epochs"] == 2 and "target_met" in results

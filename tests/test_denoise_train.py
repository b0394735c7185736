"""dlsp.denoise.train and `dlsp denoise train`: run folders, the loss options, resume, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlsp.audio.stft import StftConfig
from dlsp.config import apply_overrides
from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.denoise.model_file import load_denoiser
from dlsp.denoise.train import DenoiseConfig, load_data, make_step, train_run
from dlsp.models.denoisers import build_denoiser
from dlsp.models.losses import LOSSES

TINY = ["model.args={hidden: [32], context: 1, output: mask}", "stft.n_fft=256", "stft.hop_length=128",
        "data.segment_seconds=0.5", "data.segments_per_epoch=32", "data.val_segments=16", "train.batch_size=8",
        "train.device=cpu", "train.patience=null"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_synthetic_corpus(tmp_path_factory.mktemp("synth") / "c", seed=5, n_speakers=5,
                                 utterances_per_speaker=3, noise_files_per_kind=3, noise_seconds=3.0,
                                 progress=False)


def _config(*extra: str) -> DenoiseConfig:
    return apply_overrides(DenoiseConfig(), [*TINY, *extra])


def test_run_folder_and_model_file(corpus, tmp_path):
    config = _config("train.epochs=3")
    data = load_data(config, clean=[str(corpus / "speech")], noise=[str(corpus / "noise")], progress=False)
    model, result = train_run(config, data, tmp_path / "run", progress=False, log=lambda *a: None)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "best.pt", "last.pt", "loss.png", "splits.json", "results.json"):
        assert (run / name).exists(), name
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1, 2]
    assert all("val_si_sdr_improvement" in line for line in lines)
    loaded = load_denoiser(run / "best.pt")
    assert loaded.sample_rate == 16000 and loaded.stft == StftConfig(n_fft=256, hop_length=128)
    x = torch.rand(1, 129, 10)
    torch.testing.assert_close(loaded.model(x), model.cpu()(x))
    assert json.loads((run / "results.json").read_text())["best_epoch"] == result.best_epoch + 1  # from 1
    # Audio examples of the best model on validation segments, for reports.
    import soundfile as sf

    noisy, rate = sf.read(run / "samples" / "sample_1_noisy.wav")
    denoised, _ = sf.read(run / "samples" / "sample_1_denoised.wav")
    assert rate == 16000 and noisy.shape == denoised.shape and not np.allclose(noisy, denoised, atol=1e-3)
    assert len(list((run / "samples").glob("sample_*.png"))) == 3


def test_resume_continues_where_it_stopped_and_matches_an_uninterrupted_run(corpus, tmp_path):
    config = _config("train.epochs=4")
    data = load_data(config, clean=[str(corpus / "speech")], noise=[str(corpus / "noise")], progress=False)
    _, full = train_run(config, data, tmp_path / "full", progress=False, log=lambda *a: None)
    train_run(_config("train.epochs=2"), data, tmp_path / "part", progress=False, log=lambda *a: None)
    _, resumed = train_run(config, data, tmp_path / "part", resume=True, progress=False, log=lambda *a: None)
    assert len(resumed.history) == 4
    for a, b in zip(full.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4


@pytest.mark.parametrize("loss", LOSSES)
def test_training_step_works_with_every_loss(loss):
    config = _config(f"train.loss={loss}")
    model = build_denoiser("linear", n_freqs=129, hidden=[8])
    clean = (np.random.default_rng(0).standard_normal((2, 4000)) * 0.1).astype(np.float32)
    noisy = clean + np.float32(0.05) * np.random.default_rng(1).standard_normal((2, 4000)).astype(np.float32)
    value = make_step(config, torch.device("cpu"))(model, (noisy, clean))
    value.backward()
    assert torch.isfinite(value) and model.net[0].weight.grad.abs().sum() > 0


def test_cli_trains_and_reports(corpus, tmp_path, cli):
    sets = [a for item in TINY for a in ("--set", item)]
    data = ["--clean", corpus / "speech", "--noise", corpus / "noise", "--out", tmp_path / "r", "--quiet"]
    code, out, err = cli("denoise", "train", *data, "--epochs", "1", *sets)
    assert code == 0, err
    assert "val SI-SDR" in out and (tmp_path / "r" / "best.pt").exists()
    # The folder rule of every training command: an existing run is refused, and left as it was...
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")}
    code, _, err = cli("denoise", "train", *data, "--epochs", "1", *sets)
    assert code == 2 and "use --resume to continue it or --overwrite" in err and err.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")} == before
    # ...unless it is started over (or continued: --resume, tests/test_reliability.py).
    assert cli("denoise", "train", *data, "--overwrite", "--epochs", "2", *sets)[0] == 0
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "r" / "results.json").read_text())["epochs"] == 2
    # The run remembers its data folders: --resume alone continues it (the README's example).
    code, _, err = cli("denoise", "train", "--out", tmp_path / "r", "--resume", "--epochs", "3", "--quiet")
    assert code == 0, err
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 3
    inputs = json.loads((tmp_path / "r" / "inputs.json").read_text())
    assert inputs["clean"] == [str((corpus / "speech").resolve())] and inputs["pairs"] is None


def test_cli_tracks_the_run_in_mlflow(corpus, tmp_path, cli):
    pytest.importorskip("mlflow", reason="needs mlflow (pip install 'dlsp[track]')")
    from mlflow.tracking import MlflowClient

    sets = [a for item in TINY for a in ("--set", item)]
    code, _, err = cli("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out",
                       tmp_path / "runs" / "r", "--epochs", "2", "--quiet", "--track", "mlflow", *sets)
    assert code == 0, err
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("dlsp").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["stft.n_fft"] == "256"
    assert len(client.get_metric_history(run.info.run_id, "val_si_sdr")) == 2
    assert "final/val_si_sdr_improvement" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"best.pt", "loss.png", "config.yaml",
                                                                        "results.json", "samples"}
    assert len(client.list_artifacts(run.info.run_id, "samples")) == 12  # 3 x (noisy, denoised, clean, png)


def test_cli_bad_inputs(corpus, tmp_path, cli):
    code, _, err = cli("denoise", "train", "--out", tmp_path / "r1", "--quiet")
    assert code == 2 and "training data missing" in err
    code, _, err = cli("denoise", "train", "--pairs", corpus, "--clean", corpus, "--out", tmp_path / "r2")
    assert code == 2 and "not both" in err
    code, _, err = cli("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out",
                       tmp_path / "r3", "--set", "train.lr=fast")
    assert code == 2 and "train.lr: expected float" in err
    sets = [a for item in TINY for a in ("--set", item)]
    code, _, err = cli("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out",
                       tmp_path / "r4", "--resume", "--quiet", *sets)
    assert code == 2 and "nothing to resume" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_init_from_fine_tunes_an_earlier_model(corpus, tmp_path):
    config = _config("train.epochs=2")
    data = load_data(config, clean=[str(corpus / "speech")], noise=[str(corpus / "noise")], progress=False)
    train_run(config, data, tmp_path / "base", progress=False, log=lambda *a: None)
    base = load_denoiser(tmp_path / "base" / "best.pt").model
    messages = []
    tuned_config = _config("train.epochs=1", "train.lr=1e-9", f"train.init_from={tmp_path / 'base' / 'best.pt'}",
                           "train.loss=si_sdr + 1000*compressed_mse")
    tuned, _ = train_run(tuned_config, data, tmp_path / "tuned", progress=False, log=messages.append)
    assert any("fine-tuning" in str(m) for m in messages)
    # A near-zero learning rate leaves the starting weights (normalizer included) where the base model had them.
    for (name, mine), theirs in zip(tuned.state_dict().items(), base.state_dict().values(), strict=True):
        torch.testing.assert_close(mine.cpu(), theirs, atol=1e-6, rtol=0, msg=name)


GRU = "model={name: gru, args: {hidden: 8, layers: 1, lookahead: 0, output: mask}}"


def _trained_gru(corpus, tmp_path):
    """`(data, base model, init_from override)`: a small gru trained for one epoch in tmp_path/base."""
    config = _config(GRU, "train.epochs=1")
    data = load_data(config, clean=[str(corpus / "speech")], noise=[str(corpus / "noise")], progress=False)
    train_run(config, data, tmp_path / "base", progress=False, log=lambda *a: None)
    return data, load_denoiser(tmp_path / "base" / "best.pt").model, f"train.init_from={tmp_path / 'base' / 'best.pt'}"


def test_init_from_grows_a_gru_to_more_lookahead_and_units(corpus, tmp_path, cli):
    data, base, start = _trained_gru(corpus, tmp_path)
    wider = "model={name: gru, args: {hidden: 11, project: 8, layers: 1, lookahead: 2, output: mask}}"
    grown, _ = train_run(_config(wider, "train.epochs=1", "train.lr=1e-9", start), data,
                         tmp_path / "grown", progress=False, log=lambda *a: None)
    assert grown.lookahead == 2 and grown.hidden == 11
    x = torch.rand(2, base.n_freqs, 30)
    with torch.no_grad():
        torch.testing.assert_close(grown.cpu()(x), base(x), atol=1e-4, rtol=0)
    # Growing is the one difference allowed: a wider GRU whose input projection widens too is refused, in one line.
    sets = [a for item in TINY for a in ("--set", item)]
    code, _, err = cli("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out",
                       tmp_path / "r", "--quiet", *sets, "--set", GRU, "--set", "model.args.hidden=9", "--set", start)
    assert code == 2 and "'hidden': 9" in err and "best.pt" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_init_from_refuses_a_different_model(corpus, tmp_path, cli):
    config = _config("train.epochs=1")
    data = load_data(config, clean=[str(corpus / "speech")], noise=[str(corpus / "noise")], progress=False)
    train_run(config, data, tmp_path / "base", progress=False, log=lambda *a: None)
    sets = [a for item in TINY for a in ("--set", item)]
    for change, message in (("model.args={hidden: [16], context: 1, output: mask}", "the recipe builds linear"),
                            ("stft.hop_length=64", "hop 64, hann window")):
        code, _, err = cli("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out",
                           tmp_path / "r", "--quiet", *sets, "--set", change,
                           "--set", f"train.init_from={tmp_path / 'base' / 'best.pt'}")
        assert code == 2 and message in err and "best.pt" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    code, _, err = cli("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out",
                       tmp_path / "r", "--quiet", *sets, "--set", "train.loss=si_sdr + l2")
    assert code == 2 and "unknown loss 'l2'" in err


def test_bad_model_args_are_one_line_errors(corpus, tmp_path, cli):
    sets = [a for item in TINY for a in ("--set", item)]
    for change, message in (("model.args={hidden: [16], no_such_arg: 1}", "no_such_arg"),
                            ("model.args={hidden: [16], output: sigmoid_mask}", "output")):
        code, _, err = cli("denoise", "train", "--clean", corpus / "speech", "--noise", corpus / "noise", "--out",
                           tmp_path / "r", "--quiet", *sets, "--set", change)
        assert code == 2 and message in err and "model 'linear'" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_gru_grows_into_deep_filtering_and_gru_df_trains_with_any_loss(corpus, tmp_path):
    data, base, start = _trained_gru(corpus, tmp_path)
    deep = "model={name: gru_df, args: {hidden: 8, layers: 1, lookahead: 0, output: mask, df_bins: 20, df_order: 3}}"
    grown, _ = train_run(_config(deep, "train.epochs=1", "train.lr=1e-9", "train.loss=si_sdr", start), data,
                         tmp_path / "grown", progress=False, log=lambda *a: None)
    spectrum = StftConfig(n_fft=256, hop_length=128).stft(torch.randn(2, 8000))
    with torch.no_grad():
        before = torch.polar(base(spectrum.abs()), spectrum.angle())
        out = grown.cpu()(torch.cat([spectrum.real, spectrum.imag], dim=1))
        after = torch.complex(out[:, :129], out[:, 129:])
    torch.testing.assert_close(after, before, atol=1e-4, rtol=0)  # it starts out as the gru it grew from
    assert load_denoiser(tmp_path / "grown" / "best.pt").name == "gru_df"
    assert len(list((tmp_path / "grown" / "samples").glob("sample_*_denoised.wav"))) == 3
    # From scratch, on a magnitude loss (its magnitude) and a sum with SI-SDR (its own phase).
    for loss in ("compressed_mse", "si_sdr + 1000*compressed_mse"):
        _, result = train_run(_config(deep, "train.epochs=1", f"train.loss={loss}"), data,
                              tmp_path / loss.replace(" ", "").replace("*", "x").replace("+", "_"), progress=False,
                              log=lambda *a: None)
        assert np.isfinite(result.history[0]["val_loss"]) and np.isfinite(result.history[0]["val_si_sdr"])

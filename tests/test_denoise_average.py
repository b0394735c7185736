"""`dlsp denoise average` and `dlsp.denoise.model_file.average_denoisers`: model soups of fine-tuned denoisers."""

from __future__ import annotations

import torch

from dlsp.audio.stft import StftConfig
from dlsp.denoise.model_file import average_denoisers, load_denoiser, save_denoiser
from dlsp.models.denoisers import build_denoiser

STFT = StftConfig(n_fft=64, hop_length=32)


def _model_file(path, seed: int, hidden: int = 8, sample_rate: int = 16000):
    torch.manual_seed(seed)
    model = build_denoiser("linear", n_freqs=STFT.n_freqs, hidden=[hidden])
    return save_denoiser(path, model, "linear", sample_rate=sample_rate, stft=STFT, config={"seed": seed})


def test_average_is_the_mean_of_the_weights(tmp_path):
    paths = [_model_file(tmp_path / f"m{seed}.pt", seed) for seed in (1, 2, 3)]
    averaged = average_denoisers(paths)
    states = [load_denoiser(path).model.state_dict() for path in paths]
    for key, value in averaged.model.state_dict().items():
        torch.testing.assert_close(value, sum(state[key] for state in states) / 3)
    assert averaged.config == {"seed": 1} and averaged.sample_rate == 16000


def test_cli_writes_a_loadable_average_and_refuses_mismatches(tmp_path, cli):
    a, b = _model_file(tmp_path / "a.pt", 1), _model_file(tmp_path / "b.pt", 2)
    code, out, err = cli("denoise", "average", a, b, "-o", tmp_path / "soup.pt")
    assert code == 0, err
    assert "mean of 2 linear" in out
    soup = load_denoiser(tmp_path / "soup.pt")
    assert soup.config["averaged_from"] == [str(a), str(b)]
    bad = [(_model_file(tmp_path / "wide.pt", 3, hidden=16), "averaging needs the same model"),
           (_model_file(tmp_path / "rate.pt", 4, sample_rate=8000), "at 8000 Hz")]
    for other, message in bad:
        code, _, err = cli("denoise", "average", a, other, "-o", tmp_path / "x.pt")
        assert code == 2 and message in err and other.name in err, err
        assert err.count("\n") == 1 and not (tmp_path / "x.pt").exists()
    code, _, err = cli("denoise", "average", a, "-o", tmp_path / "x.pt")
    assert code == 2 and "at least two" in err
    code, _, err = cli("denoise", "average", a, b, "-o", a)
    assert code == 2 and "overwrite" in err

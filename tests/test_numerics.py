"""Non-finite numbers stop training and inference with one clear error instead of spreading silently."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.train.loop import fit


def _nan_at(bad_batch: int, bad_epoch: int = 0, validation: bool = False):
    """A step function whose loss is NaN at one batch of one epoch (training, or validation with `validation`)."""
    seen = {"epoch": 0, "batch": 0}

    def step(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        loss = ((model(batch) - 1.0) ** 2).mean()
        is_validation = not model.training
        hit = (is_validation == validation and seen["epoch"] == bad_epoch and seen["batch"] == bad_batch)
        seen["batch"] += 1
        return loss * float("nan") if hit else loss

    def train_batches(epoch: int):
        seen.update(epoch=epoch, batch=0)
        return [torch.ones(4, 3) * i for i in range(6)]

    def val_batches():
        seen["batch"] = 0
        return [torch.ones(4, 3) for _ in range(4)]

    return step, train_batches, val_batches


def test_nan_training_loss_stops_fit_naming_epoch_and_batch():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    step, train_batches, val_batches = _nan_at(3, bad_epoch=1)
    before = None

    def remember(record, improved):
        nonlocal before
        before = {k: v.clone() for k, v in model.state_dict().items()}

    with pytest.raises(DlspError, match=r"non-finite loss nan at epoch 2, batch 4") as info:
        fit(model, step, torch.optim.SGD(model.parameters(), lr=0.01), train_batches, val_batches, epochs=3,
            progress=False, on_epoch_end=remember)
    assert "\n" not in str(info.value)
    # The NaN never reached the weights: no optimiser step was taken with it.
    assert all(torch.isfinite(p).all() for p in model.parameters()) and before is not None


def test_nan_validation_loss_stops_fit_naming_epoch_and_batch():
    model = nn.Linear(3, 1)
    step, train_batches, val_batches = _nan_at(2, bad_epoch=0, validation=True)
    with pytest.raises(DlspError, match=r"non-finite validation loss nan at epoch 1, validation batch 3"):
        fit(model, step, torch.optim.SGD(model.parameters(), lr=0.01), train_batches, val_batches, epochs=2,
            progress=False)


@pytest.fixture
def nan_wav(tmp_path):
    """A float WAV holding a NaN and an Inf in the middle of speech-like audio."""
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    audio[8000], audio[9000] = np.nan, np.inf
    path = tmp_path / "in" / "broken.wav"
    path.parent.mkdir()
    sf.write(str(path), audio, 16000, subtype="FLOAT")
    return path


def test_denoise_refuses_non_finite_audio_naming_the_file(nan_wav, tmp_path, cli):
    from dlsp.denoise.enhance import Denoiser

    with pytest.raises(DlspError, match="NaN or Inf") as info:
        Denoiser.from_file(None, device="cpu").enhance_file(nan_wav, tmp_path / "out.wav")
    assert info.value.path == str(nan_wav)
    assert not (tmp_path / "out.wav").exists()
    # A folder whose only file is bad: listed, and as no file could be denoised, exit 2 with nothing created.
    code, _, err = cli("denoise", "run", nan_wav.parent, "-o", tmp_path / "out")
    assert code == 2 and f"{nan_wav}: audio contains NaN or Inf samples; skipped" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no output, no temporary file


def test_speaker_embedding_refuses_non_finite_audio_naming_the_file(nan_wav, tmp_path, cli):
    code, _, err = cli("speaker", "embed", nan_wav, "-o", tmp_path / "emb.npy")
    assert code == 2 and str(nan_wav) in err and "NaN or Inf" in err and err.count("\n") == 1
    assert not (tmp_path / "emb.npy").exists()


def test_classify_predict_refuses_non_finite_audio_naming_the_file(nan_wav, tmp_path, cli):
    from dlsp.classify.features import FeatureConfig
    from dlsp.config import to_dict
    from dlsp.models.classifiers import build_classifier
    from dlsp.train.checkpoint import save_checkpoint

    features = FeatureConfig(n_fft=256, hop_length=128, n_mels=40)
    frames = features.frames(16000)
    model = build_classifier("mlp", n_mfcc=13, frames=frames, n_classes=2)
    save_checkpoint(tmp_path / "best.pt", model, "mlp", task="classify", labels=["a", "b"],
                    features=to_dict(features), sample_rate=16000)
    code, _, err = cli("classify", "predict", tmp_path, nan_wav)
    assert code == 2 and str(nan_wav) in err and "NaN or Inf" in err and "Traceback" not in err

"""Tiny denoisers and the unchunked reference transform shared by the enhancement and streaming tests."""

from __future__ import annotations

import numpy as np
import torch

from dlsp.audio.stft import StftConfig, from_magphase, magphase
from dlsp.denoise.model_file import DenoiserModel
from dlsp.models.denoisers import build_denoiser

SR = 8000
STFT = StftConfig(n_fft=128, hop_length=32)
# Small versions of the registered models (each also has a causal variant).
MODEL_ARGS = {
    "linear": dict(hidden=[8], context=2),
    "cnn1d": dict(channels=[2, 2], context=1),
    "cnn2d": dict(channels=[2, 2], dilations=[1, 2]),
    "unet": dict(depth=2, base_channels=2),
}


def tiny_model(name: str = "linear", causal: bool = False, stft: StftConfig = STFT, seed: int = 0,
               **overrides) -> DenoiserModel:
    torch.manual_seed(seed)
    network = build_denoiser(name, n_freqs=stft.n_freqs, causal=causal, **{**MODEL_ARGS[name], **overrides})
    return DenoiserModel(network.eval(), name, SR, stft)


def offline(model: DenoiserModel, audio: np.ndarray) -> np.ndarray:
    """The unchunked reference at the model's rate: istft(from_magphase(model(magnitude), phase)).
    Shape: `(time,) -> (time,)`."""
    magnitude, phase = magphase(model.stft.stft(torch.from_numpy(audio)))
    with torch.no_grad():
        estimate = model.model(magnitude[None])[0]
    return model.stft.istft(from_magphase(estimate, phase), length=audio.shape[-1]).numpy()

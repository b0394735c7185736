"""Spectral denoisers: networks on STFT magnitudes that predict a mask or the clean magnitude.

Every model takes the noisy magnitude `(batch, freq, frames)` and returns the estimated clean magnitude of the same
shape; the noisy phase is kept outside the model. Every model reports `get_model_args()` (to rebuild it from a
checkpoint), `receptive_field` (past, future frames) and `time_multiple` (chunk alignment), which chunked and
streaming inference rely on to reproduce the offline output exactly. Inputs are compressed with `log1p` and
standardised per frequency with statistics stored as buffers, so a checkpoint carries everything to run it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh}
OUTPUTS = ("mask", "magnitude")


class SpectralNormalizer(nn.Module):
    """log1p compression and per-frequency standardisation with stored statistics.

    Shape: `(batch, freq, frames) -> (batch, freq, frames)`.
    """

    def __init__(self, n_freqs: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_freqs, 1))
        self.register_buffer("std", torch.ones(n_freqs, 1))

    @torch.no_grad()
    def fit(self, magnitudes: torch.Tensor) -> None:
        """Set the statistics from magnitudes `(batch, freq, frames)`."""
        logmag = torch.log1p(magnitudes).transpose(0, 1).reshape(magnitudes.shape[1], -1)
        self.mean.copy_(logmag.mean(dim=1, keepdim=True))
        self.std.copy_(logmag.std(dim=1, keepdim=True).clamp_min(1e-3))

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return (torch.log1p(magnitude) - self.mean) / self.std


class LinearDenoiser(nn.Module):
    """Frame-wise denoiser: a linear map or MLP from (context) magnitude frames to one clean frame.

    With `hidden=()` and `output="magnitude"` it is the linear model of the original studies; `hidden=(256,)`,
    `activation="elu"` and `output="magnitude"` is their Dense(256, ELU) -> Dense(513, ReLU) autoencoder.
    `context` frames on each side give the model local temporal structure; `causal=True` uses only past frames
    (for streaming).

    Shape: `(batch, freq, frames) -> (batch, freq, frames)`.
    """

    def __init__(
        self,
        n_freqs: int = 513,
        hidden: tuple[int, ...] | list[int] = (256,),
        context: int = 0,
        causal: bool = False,
        activation: str = "elu",
        output: str = "mask",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.args = dict(n_freqs=n_freqs, hidden=list(hidden), context=context, causal=causal,
                         activation=activation, output=output, dropout=dropout)
        self.n_freqs, self.context, self.causal, self.output = n_freqs, context, causal, output
        self.normalizer = SpectralNormalizer(n_freqs)
        window = context + 1 if causal else 2 * context + 1
        layers: list[nn.Module] = []
        width = n_freqs * window
        for size in hidden:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_freqs))
        self.net = nn.Sequential(*layers)

    def get_model_args(self) -> dict[str, Any]:
        return dict(self.args)

    @property
    def receptive_field(self) -> tuple[int, int]:
        """`(past, future)` frames that output frame t depends on: input frames t-past .. t+future."""
        return (self.context, 0 if self.causal else self.context)

    @property
    def time_multiple(self) -> int:
        """Chunks must start at frame indices that are multiples of this (1: any frame)."""
        return 1

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        features = self.normalizer(magnitude)  # (B, F, T)
        frames = _context_frames(features, self.context, self.causal)  # (B, T, F * window)
        raw = self.net(frames).transpose(1, 2)  # (B, F, T)
        if self.output == "mask":
            return torch.sigmoid(raw) * magnitude
        return torch.relu(raw)


def _context_frames(features: torch.Tensor, context: int, causal: bool) -> torch.Tensor:
    """Stack neighbouring frames. Shape: `(B, F, T) -> (B, T, F * window)`, edges padded by replication."""
    if context == 0:
        return features.transpose(1, 2)
    left, right = (context, 0) if causal else (context, context)
    padded = nn.functional.pad(features, (left, right), mode="replicate")
    window = left + right + 1
    stacked = padded.unfold(dimension=2, size=window, step=1)  # (B, F, T, window)
    return stacked.permute(0, 2, 3, 1).reshape(features.shape[0], features.shape[2], -1)


MODELS: dict[str, type[nn.Module]] = {"linear": LinearDenoiser}


def build_denoiser(name: str, **kwargs: Any) -> nn.Module:
    """Build a denoiser by its registry name with keyword arguments (as recorded in a checkpoint)."""
    if name not in MODELS:
        raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)

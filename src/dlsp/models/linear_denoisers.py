"""The frame-wise denoiser, registered as `linear` in `dlsp.models.denoisers.MODELS` (contract: `denoiser_base`)."""

from __future__ import annotations

import torch
from torch import nn

from dlsp.models.denoiser_base import (
    ACTIVATIONS,
    SpectralDenoiser,
    SpectralNormalizer,
    apply_head,
    check_head,
    context_frames,
)


class LinearDenoiser(SpectralDenoiser):
    """Frame-wise denoiser: a linear map or MLP from (context) magnitude frames to one clean frame.

    With `hidden=()` and `output="magnitude"` it is the linear model of the original studies; `hidden=(256,)`,
    `activation="elu"` and `output="magnitude"` is their Dense(256, ELU) -> Dense(513, ReLU) autoencoder.
    `context` frames on each side give the model local temporal structure; `causal=True` uses only past frames
    (for streaming). Parameters at n_freqs=513: 263k with the defaults (context 0), 526k with context=1, 789k
    with context=2; RTF (single-thread forward time / audio time, 16 kHz) 0.0005-0.0012 at hop 512 and
    0.001-0.002 at hop 128.

    `noise_frames > 0` adds two summaries of the last `noise_frames` frames to every input: the running
    minimum and mean of each frequency's normalised log-magnitude. The minimum tracks the noise floor the way
    minimum-statistics noise estimators do, which helps the network on noises it never heard in training.

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
        mask_max: float = 1.0,
        noise_frames: int = 0,
    ) -> None:
        super().__init__()
        check_head(output, mask_max, activation)
        if noise_frames < 0:
            raise ValueError(f"noise_frames must be >= 0, got {noise_frames}")
        self.args = dict(n_freqs=n_freqs, hidden=list(hidden), context=context, causal=causal,
                         activation=activation, output=output, dropout=dropout, mask_max=float(mask_max),
                         noise_frames=noise_frames)
        self.n_freqs, self.context, self.causal, self.output = n_freqs, context, causal, output
        self.mask_max, self.noise_frames = float(mask_max), noise_frames
        self._receptive_field = (max(context, noise_frames - 1), 0 if causal else context)
        self.normalizer = SpectralNormalizer(n_freqs)
        window = context + 1 if causal else 2 * context + 1
        layers: list[nn.Module] = []
        width = n_freqs * (window + (2 if noise_frames else 0))
        for size in hidden:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_freqs))
        self.net = nn.Sequential(*layers)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        features = self.normalizer(magnitude)  # (B, F, T)
        frames = context_frames(features, self.context, self.causal)  # (B, T, F * window)
        if self.noise_frames:
            frames = torch.cat([frames, _noise_summary(features, self.noise_frames)], dim=-1)
        raw = self.net(frames).transpose(1, 2)  # (B, F, T)
        return apply_head(raw, magnitude, self.output, self.mask_max)


def _noise_summary(features: torch.Tensor, frames: int) -> torch.Tensor:
    """Running minimum and mean over the last `frames` frames (causal). Shape: `(B, F, T) -> (B, T, 2F)`."""
    padded = nn.functional.pad(features, (frames - 1, 0), mode="replicate")
    floor = -nn.functional.max_pool1d(-padded, kernel_size=frames, stride=1)
    mean = nn.functional.avg_pool1d(padded, kernel_size=frames, stride=1)
    return torch.cat([floor, mean], dim=1).transpose(1, 2)

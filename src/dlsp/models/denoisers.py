"""Spectral denoisers: networks on STFT magnitudes that predict a mask or the clean magnitude.

Every model takes the noisy magnitude `(batch, freq, frames)` and returns the estimated clean magnitude of the same
shape; the noisy phase is kept outside the model. Every model reports `get_model_args()` (to rebuild it from a
checkpoint), `receptive_field` (past, future frames) and `time_multiple` (chunk alignment), which chunked and
streaming inference rely on to reproduce the offline output exactly. Inputs are compressed with `log1p` and
standardised per frequency with statistics stored as buffers, so a checkpoint carries everything to run it; no
model normalises over the time axis of its input, so a frame's output depends only on its receptive field.

The registry `MODELS` holds `linear` (this module), `cnn1d`, `cnn2d`, `unet` (`dlsp.models.conv_denoisers`) and
`gru` (`dlsp.models.recurrent_denoisers`, a stateful model); those modules register themselves when this module is
imported.

Output heads (`output=`): `"mask"` multiplies the noisy magnitude by `mask_max * sigmoid(raw)`, so with the
default `mask_max=1.0` the model can only attenuate; `"magnitude"` returns `relu(raw)` (the original studies).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# ELU is the original studies' choice, but on CPU it costs about ten times a (leaky) ReLU per element, which is
# a third of a convolutional model's time; the 2-D models default to leaky_relu (slope 0.01).
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
               "tanh": nn.Tanh}
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


def check_head(output: str, mask_max: float, activation: str | None = None) -> None:
    """Refuse an unknown output head, a non-positive `mask_max` or an unknown activation (ValueError)."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if not mask_max > 0:
        raise ValueError(f"mask_max must be positive, got {mask_max}")
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


def apply_head(raw: torch.Tensor, magnitude: torch.Tensor, output: str, mask_max: float) -> torch.Tensor:
    """Turn the network's raw output into a non-negative magnitude estimate.

    Shape: `(batch, freq, frames)`, `(batch, freq, frames) -> (batch, freq, frames)`.
    """
    if output == "mask":
        mask = torch.sigmoid(raw)
        return (mask if mask_max == 1.0 else mask * mask_max) * magnitude
    return torch.relu(raw)


def time_padding(kernel: int, dilation: int = 1, causal: bool = False) -> tuple[int, int]:
    """Zero frames to add `(before, after)` so a time convolution keeps the frame count: symmetric, or all
    before (causal: output frame t sees only frames <= t). `kernel` must be odd."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"time kernel sizes must be odd and positive, got {kernel}")
    span = dilation * (kernel - 1)
    return (span, 0) if causal else (span // 2, span // 2)


def plain(value: Any) -> Any:
    """Tuples become lists (recursively), so model arguments compare equal after a JSON or checkpoint trip."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    return value


class SpectralDenoiser(nn.Module):
    """Base of every denoiser: it reports its keyword arguments (to rebuild it from a checkpoint) and its
    receptive field (for chunked and streaming inference). Subclasses set `self.args` and
    `self._receptive_field` in `__init__`, and override `time_multiple` when chunks need alignment."""

    args: dict[str, Any]
    _receptive_field: tuple[int, int]

    def get_model_args(self) -> dict[str, Any]:
        return plain(self.args)

    @property
    def receptive_field(self) -> tuple[int, int]:
        """`(past, future)` frames that output frame t depends on: input frames t-past .. t+future."""
        return self._receptive_field

    @property
    def time_multiple(self) -> int:
        """Chunks must start at frame indices that are multiples of this (1: any frame)."""
        return 1


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
        frames = _context_frames(features, self.context, self.causal)  # (B, T, F * window)
        if self.noise_frames:
            frames = torch.cat([frames, _noise_summary(features, self.noise_frames)], dim=-1)
        raw = self.net(frames).transpose(1, 2)  # (B, F, T)
        return apply_head(raw, magnitude, self.output, self.mask_max)


def _context_frames(features: torch.Tensor, context: int, causal: bool) -> torch.Tensor:
    """Stack neighbouring frames. Shape: `(B, F, T) -> (B, T, F * window)`, edges padded by replication."""
    if context == 0:
        return features.transpose(1, 2)
    left, right = (context, 0) if causal else (context, context)
    padded = nn.functional.pad(features, (left, right), mode="replicate")
    window = left + right + 1
    stacked = padded.unfold(dimension=2, size=window, step=1)  # (B, F, T, window)
    return stacked.permute(0, 2, 3, 1).reshape(features.shape[0], features.shape[2], -1)


def _noise_summary(features: torch.Tensor, frames: int) -> torch.Tensor:
    """Running minimum and mean over the last `frames` frames (causal). Shape: `(B, F, T) -> (B, T, 2F)`."""
    padded = nn.functional.pad(features, (frames - 1, 0), mode="replicate")
    floor = -nn.functional.max_pool1d(-padded, kernel_size=frames, stride=1)
    mean = nn.functional.avg_pool1d(padded, kernel_size=frames, stride=1)
    return torch.cat([floor, mean], dim=1).transpose(1, 2)


MODELS: dict[str, type[nn.Module]] = {"linear": LinearDenoiser}


def build_denoiser(name: str, **kwargs: Any) -> nn.Module:
    """Build a denoiser by its registry name with keyword arguments (as recorded in a checkpoint)."""
    if name not in MODELS:
        raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


# The convolutional and recurrent models use the helpers above and add themselves to MODELS; importing them last
# keeps either import order working (this module first, or theirs first).
import dlsp.models.conv_denoisers  # noqa: E402
import dlsp.models.recurrent_denoisers  # noqa: E402, F401

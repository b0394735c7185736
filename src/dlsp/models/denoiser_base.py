"""What every spectral denoiser shares: the base class, the input normaliser, the output heads and helpers.

Every model takes the noisy magnitude `(batch, freq, frames)` and returns the estimated clean magnitude of the same
shape; the noisy phase is kept outside the model. Every model reports `get_model_args()` (to rebuild it from a
checkpoint), `receptive_field` (past, future frames) and `time_multiple` (chunk alignment), which chunked and
streaming inference rely on to reproduce the offline output exactly. Inputs are compressed with `log1p` and
standardised per frequency with statistics stored as buffers, so a checkpoint carries everything to run it; no
model normalises over the time axis of its input, so a frame's output depends only on its receptive field.

A model with `takes_spectrum = True` (`gru_df`) takes and returns the complex spectrum instead, as real numbers:
real parts then imaginary parts stacked along frequency, `(batch, 2 * freq, frames)`. `network_input` and
`estimate_spectrum` turn a complex spectrum into either kind of model's input and its output back into a complex
estimate, so training and the inference engines treat both kinds alike.

Output heads (`output=`): `"mask"` multiplies the noisy magnitude by `mask_max * sigmoid(raw)`, so with the
default `mask_max=1.0` the model can only attenuate; `"magnitude"` returns `relu(raw)` (the original studies).

The models live in `dlsp.models.linear_denoisers`, `conv_denoisers` and `recurrent_denoisers`; the registry that
names them is `dlsp.models.denoisers`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlsp.audio.stft import from_magphase

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


def takes_spectrum(model: nn.Module) -> bool:
    """Whether `model` takes the complex spectrum (real and imaginary parts) instead of the magnitude."""
    return bool(getattr(model, "takes_spectrum", False))


def network_input(spectrum: torch.Tensor, spectral: bool) -> torch.Tensor:
    """A model's input from the complex noisy spectrum: its magnitude, or (`spectral`) its real and imaginary
    parts stacked along frequency. Shape: complex `(..., freq, frames)` -> `(..., freq | 2 * freq, frames)`."""
    if spectral:
        return torch.cat([spectrum.real, spectrum.imag], dim=-2)
    return spectrum.abs()


def estimate_spectrum(output: torch.Tensor, spectrum: torch.Tensor, spectral: bool) -> torch.Tensor:
    """The complex clean-spectrum estimate from a model's `output`: a magnitude with the noisy phase of
    `spectrum`, or (`spectral`) the model's own real and imaginary parts.

    Shape: `(..., freq | 2 * freq, frames)`, complex `(..., freq, frames)` -> complex `(..., freq, frames)`.
    """
    if spectral:
        n = output.shape[-2] // 2
        return torch.complex(output[..., :n, :], output[..., n:, :])
    return from_magphase(output, spectrum.angle())


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
        return bounded_mask(raw, mask_max) * magnitude
    return torch.relu(raw)


def bounded_mask(raw: torch.Tensor, mask_max: float) -> torch.Tensor:
    """The `mask` head's gain: `mask_max * sigmoid(raw)`, in (0, mask_max)."""
    mask = torch.sigmoid(raw)
    return mask if mask_max == 1.0 else mask * mask_max


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


def context_frames(features: torch.Tensor, context: int, causal: bool) -> torch.Tensor:
    """Stack neighbouring frames. Shape: `(B, F, T) -> (B, T, F * window)`, edges padded by replication."""
    if context == 0:
        return features.transpose(1, 2)
    left, right = (context, 0) if causal else (context, context)
    padded = nn.functional.pad(features, (left, right), mode="replicate")
    window = left + right + 1
    stacked = padded.unfold(dimension=2, size=window, step=1)  # (B, F, T, window)
    return stacked.permute(0, 2, 3, 1).reshape(features.shape[0], features.shape[2], -1)

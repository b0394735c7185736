"""The denoiser registry: model names (as recorded in checkpoints and recipes) -> classes.

`linear` (`dlsp.models.linear_denoisers`), `cnn1d`, `cnn2d`, `unet` (`dlsp.models.conv_denoisers`), `gru` and
`gru_df` (`dlsp.models.recurrent_denoisers`, stateful; `gru_df` takes the complex spectrum). What they share, and
the contract every model keeps, is in
`dlsp.models.denoiser_base`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dlsp.models.conv_denoisers import Cnn1dDenoiser, Cnn2dDenoiser, UNetDenoiser
from dlsp.models.linear_denoisers import LinearDenoiser
from dlsp.models.recurrent_denoisers import DeepFilterGru, GruDenoiser

MODELS: dict[str, type[nn.Module]] = {"linear": LinearDenoiser, "cnn1d": Cnn1dDenoiser, "cnn2d": Cnn2dDenoiser,
                                      "unet": UNetDenoiser, "gru": GruDenoiser,
                                      "gru_df": DeepFilterGru}


def build_denoiser(name: str, **kwargs: Any) -> nn.Module:
    """Build a denoiser by its registry name with keyword arguments (as recorded in a checkpoint)."""
    if name not in MODELS:
        raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)

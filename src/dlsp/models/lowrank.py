"""Low-rank linear layers: a weight matrix W (out x in) replaced by U V^T of rank D.

A rank-D layer holds D * (in + out) weights instead of in * out. Three ways to get one: truncate the SVD of a
trained layer (`factorize_linear`), train the factorised layer from scratch (`LowRankLinear` freshly built), or
truncate then fine-tune. `compress_model` does the first on every `nn.Linear` of any model where it saves
parameters; `low_rank_ranks` lists the factorised layers so a checkpoint can record them in its model args
(`model_args["low_rank"]`) and `apply_low_rank_structure` can rebuild the same shapes before loading weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlsp.errors import DlspError


class LowRankLinear(nn.Module):
    """`y = x V U^T + b`: a linear layer whose weight is the rank-`rank` product `U V^T`.

    Shape: `(..., in_features)` -> `(..., out_features)`; `u` is `(out, rank)`, `v` is `(in, rank)`.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True) -> None:
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise DlspError(f"rank must be between 1 and {min(in_features, out_features)}, got {rank}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.u = nn.Parameter(torch.empty(out_features, rank))
        self.v = nn.Parameter(torch.empty(in_features, rank))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # U, V ~ uniform(-b, b) give Var(U V^T) = rank * b^4 / 9; matching PyTorch's default Linear init
        # (uniform(+-1/sqrt(in)), variance 1 / (3 in)) needs b = (3 / (rank * in)) ** 0.25.
        bound = (3.0 / (self.rank * self.in_features)) ** 0.25
        nn.init.uniform_(self.u, -bound, bound)
        nn.init.uniform_(self.v, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -1 / math.sqrt(self.in_features), 1 / math.sqrt(self.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.v.t()), self.u, self.bias)

    def weight(self) -> torch.Tensor:
        """The full `(out, in)` matrix U V^T."""
        return self.u @ self.v.t()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def linear_parameter_count(in_features: int, out_features: int, rank: int | None = None, bias: bool = True) -> int:
    """Parameters of a dense (`rank=None`) or rank-`rank` linear layer."""
    weights = in_features * out_features if rank is None else rank * (in_features + out_features)
    return weights + (out_features if bias else 0)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in `model` (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def saves_parameters(in_features: int, out_features: int, rank: int) -> bool:
    """Whether a rank-`rank` factorisation is smaller than the dense layer (and possible at all)."""
    return rank < min(in_features, out_features) and rank * (in_features + out_features) < in_features * out_features


@torch.no_grad()
def factorize_linear(layer: nn.Linear, rank: int) -> LowRankLinear:
    """The best rank-`rank` approximation of `layer` (truncated SVD, singular values split evenly over U and V).

    At full rank (`min(in, out)`) the output equals the layer's up to rounding.
    """
    weight = layer.weight.detach().to(torch.float64)
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    root = s[:rank].sqrt()
    low = LowRankLinear(layer.in_features, layer.out_features, rank, bias=layer.bias is not None)
    low = low.to(device=layer.weight.device, dtype=layer.weight.dtype)
    low.u.copy_(u[:, :rank] * root)
    low.v.copy_(vh[:rank].t() * root)
    if layer.bias is not None:
        low.bias.copy_(layer.bias)
    return low


def compress_model(model: nn.Module, rank: int, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Replace, in place, every `nn.Linear` where rank `rank` saves parameters by its truncated SVD.

    Layers too small to gain (e.g. a 10-class output layer at rank 20) stay dense. Returns the
    `{module path: rank}` map of the replaced layers; an empty map means nothing could be compressed.
    """
    if rank < 1:
        raise DlspError(f"rank must be a positive integer, got {rank}")
    ranks = {}
    for path, layer in list(model.named_modules()):
        if isinstance(layer, nn.Linear) and path not in skip \
                and saves_parameters(layer.in_features, layer.out_features, rank):
            _set_module(model, path, factorize_linear(layer, rank))
            ranks[path] = rank
    return ranks


def low_rank_ranks(model: nn.Module) -> dict[str, int]:
    """`{module path: rank}` of the factorised layers in `model` (what a checkpoint records)."""
    return {path: m.rank for path, m in model.named_modules() if isinstance(m, LowRankLinear)}


def apply_low_rank_structure(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """Replace the `nn.Linear` layers named in `ranks` by fresh `LowRankLinear` layers (weights loaded later)."""
    if not isinstance(ranks, dict):
        raise DlspError("model args 'low_rank' must map layer names to ranks")
    modules = dict(model.named_modules())
    for path, rank in ranks.items():
        layer = modules.get(path)
        if not isinstance(layer, nn.Linear) or not isinstance(rank, int):
            raise DlspError(f"model args 'low_rank' names {path!r}, which is not a linear layer of this model")
        _set_module(model, path, LowRankLinear(layer.in_features, layer.out_features, rank,
                                               bias=layer.bias is not None))
    return model


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)

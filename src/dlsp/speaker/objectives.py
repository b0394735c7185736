"""Training objectives for speaker embeddings.

- `bce` (the original studies' Siamese approach): the cosine similarity `s` of a pair's embeddings, scaled and
  shifted by learned `w > 0` and `b` (as in GE2E), is the logit of "same speaker"; binary cross-entropy.
- `contrastive`: `same * (1 - s)^2 + (1 - same) * max(0, s - margin)^2` on the same pairs.
- `amsoftmax` (additive-margin softmax, Wang et al. 2018): classify the training speakers with cosine logits
  `scale * (cos(e, w_k) - margin * [k = label])`; the margin forces each speaker's embeddings into a tight
  cone, which transfers to unseen speakers better than pairs do.
"""

from __future__ import annotations

import torch
from torch import nn

PAIR_OBJECTIVES = ("bce", "contrastive")
OBJECTIVES = (*PAIR_OBJECTIVES, "amsoftmax")


class PairLoss(nn.Module):
    """Loss of embedding pairs `(B, D)`, `(B, D)` with `same` `(B,)` in {0, 1}."""

    def __init__(self, kind: str = "bce", margin: float = 0.3) -> None:
        super().__init__()
        if kind not in PAIR_OBJECTIVES:
            raise ValueError(f"pair objective must be one of {PAIR_OBJECTIVES}, got {kind!r}")
        self.kind, self.margin = kind, margin
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.tensor(-5.0))

    def forward(self, first: torch.Tensor, second: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        cosine = (first * second).sum(dim=-1)
        if self.kind == "bce":
            logits = self.scale.clamp_min(1e-3) * cosine + self.bias
            return nn.functional.binary_cross_entropy_with_logits(logits, same)
        return (same * (1 - cosine).square() + (1 - same) * torch.relu(cosine - self.margin).square()).mean()


class AmSoftmaxLoss(nn.Module):
    """Additive-margin softmax over `n_classes` speakers for unit embeddings `(B, D)` and labels `(B,)`."""

    def __init__(self, n_classes: int, dim: int, scale: float = 30.0, margin: float = 0.2) -> None:
        super().__init__()
        self.scale, self.margin = scale, margin
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = embedding @ nn.functional.normalize(self.weight, dim=-1).T
        margins = nn.functional.one_hot(labels, cosine.shape[1]).to(cosine.dtype) * self.margin
        return nn.functional.cross_entropy(self.scale * (cosine - margins), labels)


class EncoderWithLoss(nn.Module):
    """The encoder and its training objective as one module, so one optimiser and one state dict cover both."""

    def __init__(self, encoder: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.encoder, self.loss = encoder, loss

"""Training objectives for speaker embeddings.

- `bce` (the original studies' Siamese approach): the cosine similarity `s` of a pair's embeddings, scaled and
  shifted by learned `w > 0` and `b` (as in GE2E), is the logit of "same speaker"; binary cross-entropy.
- `contrastive`: `same * (1 - s)^2 + (1 - same) * max(0, s - margin)^2` on the same pairs.
- `amsoftmax` (additive-margin softmax, Wang et al. 2018): classify the training speakers with cosine logits
  `scale * (cos(e, w_k) - margin * [k = label])`; the margin forces each speaker's embeddings into a tight
  cone, which transfers to unseen speakers better than pairs do.
- `ge2e` (generalised end-to-end, Wan et al. 2018, softmax form): a batch holds `per_speaker` segments of each
  of several speakers; every segment's scaled cosine to each speaker's centroid (its own speaker's centroid
  without itself) is a logit of which speaker it is. It trains the comparison verification makes (a recording
  against a speaker's mean embedding) and has no per-speaker weights to memorise.
- `amsoftmax_ge2e`: the sum of both on the same grouped batches (a classification loss plus a metric-learning
  one, as Chung et al. 2020 found best).
"""

from __future__ import annotations

import torch
from torch import nn

PAIR_OBJECTIVES = ("bce", "contrastive")
GROUPED_OBJECTIVES = ("ge2e", "amsoftmax_ge2e")
OBJECTIVES = (*PAIR_OBJECTIVES, "amsoftmax", *GROUPED_OBJECTIVES)


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


class Ge2eLoss(nn.Module):
    """GE2E softmax loss of unit embeddings `(N * M, D)` grouped by speaker: rows `i * M .. i * M + M - 1` are
    speaker i's (labels are not needed beyond that order). Learned scale `w > 0` and bias `b`."""

    def __init__(self, per_speaker: int) -> None:
        super().__init__()
        if per_speaker < 2:
            raise ValueError(f"GE2E needs at least 2 segments per speaker, got {per_speaker}")
        self.per_speaker = per_speaker
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.tensor(-5.0))

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        m = self.per_speaker
        if embedding.shape[0] % m:
            raise ValueError(f"batch of {embedding.shape[0]} is not whole groups of {m}")
        grouped = embedding.view(-1, m, embedding.shape[-1])  # (N, M, D)
        n = grouped.shape[0]
        total = grouped.sum(dim=1, keepdim=True)
        centroids = nn.functional.normalize(total[:, 0] / m, dim=-1)  # (N, D)
        own = nn.functional.normalize((total - grouped) / (m - 1), dim=-1)  # (N, M, D), itself left out
        cosine = torch.einsum("nmd,kd->nmk", grouped, centroids)
        speaker = torch.arange(n, device=embedding.device)
        cosine[speaker, :, speaker] = (grouped * own).sum(dim=-1)
        logits = self.scale.clamp_min(1e-3) * cosine + self.bias
        return nn.functional.cross_entropy(logits.reshape(n * m, n), speaker.repeat_interleave(m))


class AmSoftmaxGe2eLoss(nn.Module):
    """AM-softmax plus GE2E on the same grouped batch (labels index the training speakers)."""

    def __init__(self, n_classes: int, dim: int, per_speaker: int, scale: float = 30.0, margin: float = 0.2) -> None:
        super().__init__()
        self.amsoftmax = AmSoftmaxLoss(n_classes, dim, scale, margin)
        self.ge2e = Ge2eLoss(per_speaker)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.amsoftmax(embedding, labels) + self.ge2e(embedding)


class EncoderWithLoss(nn.Module):
    """The encoder and its training objective as one module, so one optimiser and one state dict cover both."""

    def __init__(self, encoder: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.encoder, self.loss = encoder, loss

"""Verification (detection) metrics: EER, minDCF, DET curve and bootstrap confidence intervals.

Conventions: `labels` are 1 for target trials (same speaker) and 0 for non-target trials; a higher score
means "more likely target", and a trial is accepted when `score >= threshold`. Every function needs both
classes present and finite scores, and raises `DlspError` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlsp.errors import DlspError


def det_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-alarm and miss rates at every distinct score used as the threshold.

    Returns:
        `(p_fa, p_miss, thresholds)`, thresholds decreasing from `+inf` (accept nothing: `p_fa = 0`,
        `p_miss = 1`) to the lowest score (accept everything: `p_miss = 0`, or the lowest target score's
        point). `p_fa` rises and `p_miss` falls along the arrays.

    Shape:
        `(trials,)` and `(trials,)` -> three arrays `(points,)`.
    """
    from sklearn.metrics import roc_curve

    scores, labels = _validated_trials(scores, labels)
    p_fa, p_hit, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    return p_fa, 1.0 - p_hit, thresholds


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate, as a fraction, and the threshold where it occurs.

    The EER is where the miss rate equals the false-alarm rate on the ROC with straight lines between its
    points (the usual convex-interpolation definition, as in `brentq` over an interpolated ROC). The
    threshold is interpolated the same way between the two thresholds around the crossing.

    Shape:
        `(trials,)` and `(trials,)` -> `(eer, threshold)`.
    """
    p_fa, p_miss, thresholds = det_curve(scores, labels)
    return eer_on_curve(p_fa, p_miss, thresholds)


def eer_on_curve(p_fa: np.ndarray, p_miss: np.ndarray, thresholds: np.ndarray,
                 tolerance: float = 0.0) -> tuple[float, float]:
    """`(eer, threshold)` where a DET curve's miss and false-alarm rates cross, with straight lines between its
    points (`eer`'s definition); `tolerance` counts rates that close as equal (weighted rates carry rounding).

    Shape: three `(points,)` arrays in decreasing-threshold order, as sklearn's `roc_curve` gives them.
    """
    gap = p_miss - p_fa  # starts at 1 (threshold +inf) and never rises, ends <= 0
    after = int(np.argmax(gap <= tolerance))
    if abs(gap[after]) <= tolerance or after == 0:
        return float(p_fa[after]), float(thresholds[after])
    before = after - 1
    weight = gap[before] / (gap[before] - gap[after])
    rate = p_fa[before] + weight * (p_fa[after] - p_fa[before])
    if not np.isfinite(thresholds[before]):
        return float(rate), float(thresholds[after])
    threshold = thresholds[before] + weight * (thresholds[after] - thresholds[before])
    return float(rate), float(threshold)


def min_dcf(
    scores: np.ndarray,
    labels: np.ndarray,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> tuple[float, float]:
    """Minimum normalised detection cost (NIST SRE) and the threshold that reaches it.

    `DCF(t) = c_miss p_target P_miss(t) + c_fa (1 - p_target) P_fa(t)`, divided by the cost of the best
    trivial system, `min(c_miss p_target, c_fa (1 - p_target))`, so the result lies in [0, 1]: 1 means
    no better than always accepting or always rejecting. The threshold may be `+inf` (reject every trial).

    Shape:
        `(trials,)` and `(trials,)` -> `(min_dcf, threshold)`.
    """
    if not 0 < p_target < 1:
        raise DlspError(f"p_target must lie strictly between 0 and 1, got {p_target}")
    if not (c_miss > 0 and c_fa > 0):
        raise DlspError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    p_fa, p_miss, thresholds = det_curve(scores, labels)
    costs = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    best = int(np.argmin(costs))
    default_cost = min(c_miss * p_target, c_fa * (1 - p_target))
    return float(costs[best] / default_cost), float(thresholds[best])


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float | tuple[float, ...]],
    scores: np.ndarray,
    labels: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval `(low, high)` at level `1 - alpha` for a trial metric.

    Target and non-target trials are resampled separately (stratified), so every resample keeps the class
    balance and both classes. `metric_fn(scores, labels)` may return a tuple (as `eer` and `min_dcf` do);
    its first element is used. Trials are treated as independent, which overstates confidence when many
    trials share a speaker.

    Shape:
        `(trials,)` and `(trials,)` -> `(low, high)`.
    """
    scores, labels = _validated_trials(scores, labels)
    if n_boot < 1:
        raise DlspError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise DlspError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    rng = np.random.default_rng(seed)
    target_idx = np.flatnonzero(labels == 1)
    nontarget_idx = np.flatnonzero(labels == 0)
    values = np.empty(n_boot)
    for i in range(n_boot):
        picked = np.concatenate([rng.choice(target_idx, target_idx.size),
                                 rng.choice(nontarget_idx, nontarget_idx.size)])
        value = metric_fn(scores[picked], labels[picked])
        values[i] = value[0] if isinstance(value, tuple) else value
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _validated_trials(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1:
        raise DlspError(f"scores and labels must be 1-D, got shapes {scores.shape} and {labels.shape}")
    if scores.size != labels.size:
        raise DlspError(f"scores and labels differ in length: {scores.size} vs {labels.size}")
    if not np.all(np.isfinite(scores)):
        raise DlspError("scores contain NaN or Inf")
    if not np.all((labels == 0) | (labels == 1)):
        raise DlspError(f"labels must be 1 (target) or 0 (non-target), got values {np.unique(labels)[:5]}")
    labels = labels.astype(np.int64)
    n_target = int(labels.sum())
    if n_target == 0 or n_target == labels.size:
        present = "target" if n_target else "non-target"
        raise DlspError(f"need both target and non-target trials, got only {labels.size} {present} trials")
    return scores, labels

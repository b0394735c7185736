"""Scores whose threshold means something on unseen data: AS-norm against a cohort, error rates balanced
across corpora, false-accept tables and thresholds at a target false-accept rate.

A raw cosine score depends on the voices and the recording: two children recorded on one phone score higher
than two adults on two microphones, so one cosine threshold accepts more impostors in one corpus than in
another. Adaptive symmetric normalisation (AS-norm, Matejka et al. 2017) measures how each side scores against
a cohort of training-speaker embeddings (people who are certainly neither of them) and asks how far above its
own impostors the trial score is:

    score = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)

where `s` is the cosine of the trial, and `mu_e`, `sd_e` (`mu_t`, `sd_t`) are the mean and population standard
deviation of the `top_k` highest cosines of the enrolment (test) embedding against the cohort. Taking only the
closest cohort members adapts the impostor model to the voice at hand (a child's closest impostors are other
children). A score of 2 means "two impostor deviations above the closest impostors", whatever the corpus.

Error rates over several corpora are averaged per corpus (`balanced_rates`): a false-accept rate is the mean of
each corpus's own rate, so the threshold is not set by whichever corpus has the most trials.

Telephone-band audio breaks the threshold: with nothing above ~4 kHz, two different voices look much alike, and
AS-norm scores of impostors rise far above the wideband ones (the shipped model's wideband threshold at its validation
EER, 0.137, accepted 98% of FSDD's 8 kHz impostor trials: benchmarks/speaker.py). A
`Scorer` may therefore carry a narrowband rule (`NarrowbandThreshold`): a probe whose effective bandwidth
(`dlsp.audio.bandwidth.effective_bandwidth`, measured on the probe as it is embedded: at the model's rate,
silence trimmed) is below `below_hz` (`NARROWBAND_BELOW_HZ`, 5 kHz) is judged at the narrowband threshold and
read from its rate table. The scores themselves do not change, only the threshold they are compared with. The
rule exists only for models whose Nyquist frequency lies well above `below_hz` (`narrowband_applies`): at 8 kHz
every probe is narrowband and the one threshold is already set on such audio.

The enrolment size moves the threshold too: a speaker model averaged over more recordings is a cleaner picture
of the voice, so genuine probes score higher against it, and so do impostors (at one threshold the shipped model
let in 4.5% of impostors against people enrolled with 1 recording and 5.5% with 9: benchmarks/speaker.py). A
`Scorer` may therefore carry thresholds set on speaker models of several sizes (`EnrolmentThresholds`);
`Scorer.for_enrolment(n)` gives the scorer for a person enrolled with `n` recordings: the thresholds of the
smallest measured size of at least `n` (the largest when `n` exceeds them all), so the false-accept rate of
people between two sizes stays at most the target.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dlsp.errors import DlspError
from dlsp.metrics.verification import eer, eer_on_curve

STD_FLOOR = 1e-4
KINDS = ("cosine", "asnorm")
# Pooled non-target quantiles added to the even grid of a rate table, so its low false-accept end is resolved.
TAIL_FARS = (0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
TABLE_POINTS = 101
# A probe whose content stops below this is narrowband (telephone audio stops near 3.4-4 kHz, wideband speech
# reaches the Nyquist frequency: 8 kHz at 16 kHz).
NARROWBAND_BELOW_HZ = 5000.0
# The rule needs the model's Nyquist frequency this far above `below_hz`: a resampler's anti-alias filter takes
# the top few hundred Hz off every file, so a wideband probe's bandwidth ends a little below the Nyquist frequency.
NARROWBAND_NYQUIST_MARGIN = 1.25


def unit(x: np.ndarray) -> np.ndarray:
    """Rows (or a vector) scaled to unit length, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cohort_stats(embeddings: np.ndarray, cohort: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of each embedding's `top_k` highest cosines against the cohort.

    Shape: `(N, D)`, `(M, D)` -> `(N,)`, `(N,)`.
    """
    scores = unit(embeddings) @ unit(cohort).T  # (N, M)
    k = max(1, min(int(top_k), scores.shape[1]))
    top = -np.partition(-scores, k - 1, axis=1)[:, :k]
    return top.mean(axis=1), np.maximum(top.std(axis=1), STD_FLOOR)


def as_norm(raw: np.ndarray, enroll: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
            ) -> np.ndarray:
    """AS-norm of raw cosine scores given each side's `(mean, std)` from `cohort_stats` (module docstring).

    Shape: `(T,)` and `(T,)`-shaped statistics -> `(T,)`.
    """
    return 0.5 * ((raw - enroll[0]) / enroll[1] + (raw - test[0]) / test[1])


@dataclass(frozen=True)
class RateTable:
    """False-accept and false-reject rates at ascending scores, measured on labelled trials (corpus-balanced)."""

    score: np.ndarray
    far: np.ndarray
    frr: np.ndarray

    def far_at(self, threshold: float) -> float:
        """Interpolated false-accept rate at `threshold` (the table's end values beyond its range)."""
        return float(np.interp(threshold, self.score, self.far))

    def frr_at(self, threshold: float) -> float:
        return float(np.interp(threshold, self.score, self.frr))

    def threshold_at(self, far: float) -> float:
        """The lowest tabulated score whose false-accept rate is at most `far` (the top score if none is)."""
        ok = np.flatnonzero(self.far <= far)
        return float(self.score[ok[0]] if ok.size else self.score[-1])

    def to_dict(self) -> dict[str, list[float]]:
        return {"score": self.score.tolist(), "far": self.far.tolist(), "frr": self.frr.tolist()}

    @classmethod
    def from_dict(cls, data: object) -> RateTable:
        """Read a stored table, raising `ValueError` unless it is three equal, finite, ascending-score lists."""
        if not isinstance(data, dict) or set(data) != {"score", "far", "frr"}:
            raise ValueError("a rate table needs exactly score, far and frr")
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("score", "far", "frr")]
        if any(a.ndim != 1 or a.size != arrays[0].size or not np.all(np.isfinite(a)) for a in arrays):
            raise ValueError("rate table lists must be finite and of equal length")
        if arrays[0].size < 2 or np.any(np.diff(arrays[0]) < 0):
            raise ValueError("rate table scores must ascend")
        if np.any((arrays[1] < 0) | (arrays[1] > 1) | (arrays[2] < 0) | (arrays[2] > 1)):
            raise ValueError("rates must lie in [0, 1]")
        return cls(*arrays)


def _groups(target: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    return np.zeros(target.size, dtype=np.int64) if groups is None else np.asarray(groups)


def corpus_rates(scores: np.ndarray, target: np.ndarray, groups: np.ndarray | None, thresholds: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each group's own false-accept and false-reject rates at each threshold (accept when score >= threshold),
    over the groups that have such trials.

    Shape: `(T,)`, `(T,)`, `(T,)` or None, `(P,)` -> `(G_fa, P)`, `(G_fr, P)`.
    """
    scores, target, groups = np.asarray(scores, np.float64), np.asarray(target), _groups(target, groups)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    far, frr = [], []
    for g in np.unique(groups):
        own = groups == g
        impostors, genuine = np.sort(scores[own & (target == 0)]), np.sort(scores[own & (target == 1)])
        if impostors.size:
            far.append(1.0 - np.searchsorted(impostors, thresholds, side="left") / impostors.size)
        if genuine.size:
            frr.append(np.searchsorted(genuine, thresholds, side="left") / genuine.size)
    if not far or not frr:
        raise DlspError("rates need both target and non-target trials")
    return np.array(far), np.array(frr)


def balanced_rates(scores: np.ndarray, target: np.ndarray, groups: np.ndarray | None,
                   thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-accept and false-reject rates at each threshold (accept when score >= threshold), each the mean
    of the per-group rates over the groups that have such trials (`corpus_rates`).

    Shape: `(T,)`, `(T,)`, `(T,)` or None, `(P,)` -> `(P,)`, `(P,)`.
    """
    far, frr = corpus_rates(scores, target, groups, thresholds)
    return far.mean(axis=0), frr.mean(axis=0)


def balanced_eer(scores: np.ndarray, target: np.ndarray, groups: np.ndarray | None = None
                 ) -> tuple[float, float]:
    """`(eer, threshold)` where the group-averaged false-accept and false-reject rates are equal, interpolated
    on the ROC as `dlsp.metrics.verification.eer` does (which it is, for one group)."""
    from sklearn.metrics import roc_curve

    scores, target = np.asarray(scores, np.float64), np.asarray(target)
    if groups is None or np.unique(groups).size == 1:
        return eer(scores, target)
    groups = np.asarray(groups)
    weights = np.zeros(target.size)
    for g in np.unique(groups):  # each group's targets, and its non-targets, weigh 1 in all
        for label in (0, 1):
            chosen = (groups == g) & (target == label)
            weights[chosen] = 1.0 / max(1, int(chosen.sum()))
    p_fa, p_hit, thresholds = roc_curve(target, scores, sample_weight=weights, drop_intermediate=False)
    return eer_on_curve(p_fa, 1.0 - p_hit, thresholds, tolerance=1e-12)


def threshold_at_far(scores: np.ndarray, target: np.ndarray, far: float, groups: np.ndarray | None = None,
                     every_group: bool = False) -> float:
    """The lowest threshold whose group-averaged false-accept rate (with `every_group`: every group's own) is at
    most `far`: just above the highest non-target score that must be rejected. With too few non-target trials
    it rejects them all."""
    if not 0 < far < 1:
        raise DlspError(f"a false-accept rate lies strictly between 0 and 1, got {far}")
    scores, target = np.asarray(scores, np.float64), np.asarray(target)
    candidates = np.nextafter(np.unique(scores[target == 0]), np.inf)
    per_group, _ = corpus_rates(scores, target, groups, candidates)
    rates = per_group.max(axis=0) if every_group else per_group.mean(axis=0)
    ok = np.flatnonzero(rates <= far + 1e-12)
    return float(candidates[ok[0]])


def rate_table(scores: np.ndarray, target: np.ndarray, groups: np.ndarray | None = None,
               extra: Sequence[float] = ()) -> RateTable:
    """False-accept and false-reject rates (group-averaged) at an even grid of score quantiles, the pooled
    non-target quantiles of `TAIL_FARS` and the `extra` scores (a chosen threshold, say)."""
    scores, target = np.asarray(scores, np.float64), np.asarray(target)
    grid = np.quantile(scores, np.linspace(0, 1, TABLE_POINTS))
    tail = np.quantile(scores[target == 0], 1 - np.asarray(TAIL_FARS))
    points = np.unique(np.concatenate([grid, tail, np.asarray(extra, np.float64)]))
    far, frr = balanced_rates(scores, target, groups, points)
    return RateTable(points, far, frr)


def narrowband_applies(sample_rate: int, below_hz: float = NARROWBAND_BELOW_HZ) -> bool:
    """Whether a model at `sample_rate` sees enough band above `below_hz` for a narrowband rule to tell
    telephone-band probes from wideband ones (16 kHz: yes; 8 or 11.025 kHz: no)."""
    return sample_rate / 2 >= NARROWBAND_NYQUIST_MARGIN * below_hz


@dataclass(frozen=True)
class NarrowbandThreshold:
    """The threshold for probes whose effective bandwidth is below `below_hz` (module docstring), and the
    false-accept/false-reject table it was set from (validation trials band-limited on both sides)."""

    below_hz: float
    threshold: float
    table: RateTable | None = None

    def applies_to(self, bandwidth_hz: float) -> bool:
        return bandwidth_hz < self.below_hz


@dataclass(frozen=True)
class EnrolmentThresholds:
    """The thresholds set on trials of speaker models of `enrolled` recordings against one recording: the
    wideband one and its rate table, and the narrowband rule for models that have one."""

    enrolled: int
    threshold: float
    table: RateTable | None = None
    narrow: NarrowbandThreshold | None = None


@dataclass(frozen=True)
class Scorer:
    """How a model scores a probe against enrolled embeddings, and the threshold on that score.

    `kind` "cosine": the cosine of the unit embeddings; "asnorm": its AS-norm against `cohort` `(M, D)` with the
    `top_k` closest members. `table`: false-accept/false-reject rates of this score on validation trials.
    `narrow`: the threshold for narrowband probes (module docstring); None: one threshold for every probe.
    `enrolled`: how many recordings the speaker models held in the trials `threshold`, `table` and `narrow` were
    set on (1 for pairs of recordings; None: not recorded). `by_enrolment`: thresholds set on speaker models of
    other sizes, which `for_enrolment` picks from.
    """

    kind: str
    threshold: float
    cohort: np.ndarray | None = None
    top_k: int = 100
    table: RateTable | None = None
    narrow: NarrowbandThreshold | None = None
    enrolled: int | None = None
    by_enrolment: tuple[EnrolmentThresholds, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS or (self.kind == "asnorm") != (self.cohort is not None):
            raise ValueError(f"scoring kind {self.kind!r} needs a cohort exactly when it is 'asnorm'")

    @property
    def score_id(self) -> str:
        """Names this scoring, so a threshold calibrated for it is not applied to another."""
        if self.cohort is None:
            return "cosine"
        digest = hashlib.sha256(np.ascontiguousarray(self.cohort, dtype=np.float16).tobytes()).hexdigest()[:12]
        return f"asnorm-k{self.top_k}-{digest}"

    def scores(self, enrolled: np.ndarray, probe: np.ndarray) -> np.ndarray:
        """Score of the probe `(D,)` against each enrolled embedding `(E, D)`. Shape: `-> (E,)`."""
        enrolled, probe = np.atleast_2d(unit(enrolled)), unit(probe)
        raw = enrolled @ probe
        if self.cohort is None:
            return raw
        mean, std = cohort_stats(probe[None], self.cohort, self.top_k)
        return as_norm(raw, cohort_stats(enrolled, self.cohort, self.top_k), (mean[0], std[0]))

    def trial_scores(self, embeddings: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Scores of trials `(first[i], second[i])` indexing `embeddings` `(N, D)`."""
        embeddings = unit(embeddings)
        raw = np.einsum("ij,ij->i", embeddings[first], embeddings[second])
        if self.cohort is None:
            return raw
        mean, std = cohort_stats(embeddings, self.cohort, self.top_k)
        return as_norm(raw, (mean[first], std[first]), (mean[second], std[second]))

    def for_enrolment(self, n_files: int) -> Scorer:
        """The scorer for a person enrolled with `n_files` recordings: its thresholds, tables and `enrolled` from
        the smallest size in `by_enrolment` of at least `n_files`, else the largest (module docstring); itself
        when it has no such thresholds. The score and `score_id` do not change."""
        if not self.by_enrolment:
            return self
        sizes = sorted(self.by_enrolment, key=lambda entry: entry.enrolled)
        chosen = next((entry for entry in sizes if entry.enrolled >= n_files), sizes[-1])
        return replace(self, threshold=chosen.threshold, table=chosen.table, narrow=chosen.narrow,
                       enrolled=chosen.enrolled)

    def expected_far(self, threshold: float) -> float | None:
        """The validation false-accept rate at `threshold` (None without a table)."""
        return None if self.table is None else self.table.far_at(threshold)

    def is_narrowband(self, bandwidth_hz: float) -> bool:
        """Whether a probe of this effective bandwidth falls under the narrowband rule (never without one)."""
        return self.narrow is not None and self.narrow.applies_to(bandwidth_hz)

    def threshold_for(self, bandwidth_hz: float) -> float:
        """The model's threshold for a probe of this effective bandwidth: the narrowband one when the rule
        applies, else `threshold`."""
        return self.narrow.threshold if self.is_narrowband(bandwidth_hz) else self.threshold


def check_threshold(value: float, scorer: Scorer) -> float:
    """A user's threshold: finite, and a cosine in [-1, 1] when the score is a cosine."""
    if not math.isfinite(value) or (scorer.kind == "cosine" and not -1 <= value <= 1):
        kind = "a cosine similarity in [-1, 1]" if scorer.kind == "cosine" else "a finite AS-norm score"
        raise DlspError(f"--threshold must be {kind} for this model, got {value}")
    return float(value)

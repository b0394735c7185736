"""Verification metrics (dlsp.metrics.verification): EER, minDCF, DET curve, bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.metrics import bootstrap_ci, det_curve, eer, min_dcf


def trials(target_scores, nontarget_scores) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([target_scores, nontarget_scores])
    labels = np.concatenate([np.ones(len(target_scores), int), np.zeros(len(nontarget_scores), int)])
    return scores, labels


def gaussian_trials(rng, separation: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    return trials(rng.normal(separation, 1.0, n), rng.normal(0.0, 1.0, n))


def test_eer_is_zero_for_perfectly_separated_scores():
    rate, threshold = eer(*trials([0.7, 0.8, 0.9], [0.1, 0.2, 0.3]))
    assert rate == 0.0
    assert 0.3 < threshold <= 0.7  # accepting scores >= threshold makes no error


def test_eer_is_one_half_for_identical_distributions(rng):
    rate, _ = eer(*gaussian_trials(rng, 0.0, 5000))
    assert rate == pytest.approx(0.5, abs=0.02)


def test_eer_of_gaussian_scores_matches_theory(rng):
    # Unit-variance classes d apart cross at d/2: EER = Phi(-d/2) = Phi(-1) for d = 2.
    rate, threshold = eer(*gaussian_trials(rng, 2.0, 20000))
    assert rate == pytest.approx(0.5 * math.erfc(1 / math.sqrt(2)), abs=0.006)
    assert threshold == pytest.approx(1.0, abs=0.05)


def test_eer_hand_computed_at_an_roc_point():
    # Threshold 0.7 accepts targets 0.9, 0.8 and non-target 0.7: P_miss = P_fa = 1/3 exactly.
    rate, threshold = eer(*trials([0.9, 0.8, 0.4], [0.7, 0.3, 0.2]))
    assert rate == pytest.approx(1 / 3, abs=1e-12)
    assert threshold == pytest.approx(0.7, abs=1e-12)


def test_eer_hand_computed_between_roc_points():
    # At 0.8: (P_fa, P_miss) = (0, 1/3); at 0.6: (1/2, 1/3). The gap P_miss - P_fa goes 1/3 -> -1/6, so the
    # crossing is 2/3 of the way: EER = 1/3, threshold = 0.8 + 2/3 (0.6 - 0.8) = 2/3.
    rate, threshold = eer(*trials([0.9, 0.8, 0.5], [0.6, 0.3]))
    assert rate == pytest.approx(1 / 3, abs=1e-12)
    assert threshold == pytest.approx(2 / 3, abs=1e-12)


def test_min_dcf_hand_computed():
    # With p_target = 0.5 and unit costs the normalised DCF is P_miss + P_fa: at 0.9, 0.8, 0.6, 0.5, 0.3 it is
    # 2/3, 1/3, 5/6, 1/2, 1, so the minimum is 1/3 at threshold 0.8.
    value, threshold = min_dcf(*trials([0.9, 0.8, 0.5], [0.6, 0.3]), p_target=0.5)
    assert value == pytest.approx(1 / 3, abs=1e-12)
    assert threshold == 0.8


def test_min_dcf_bounds(rng):
    assert min_dcf(*trials([0.7, 0.8, 0.9], [0.1, 0.2, 0.3]))[0] == 0.0
    useless, threshold = min_dcf(*gaussian_trials(rng, 0.0, 2000))
    assert 0.95 <= useless <= 1.0  # no better than rejecting everything
    assert threshold == np.inf or useless < 1.0
    for p_target in (0.01, 0.05, 0.5):
        value, _ = min_dcf(*gaussian_trials(rng, 1.5, 1000), p_target=p_target, c_miss=10.0)
        assert 0.0 < value < 1.0
    # A rarer target makes false alarms costlier, so the cost at equal separation rises.
    scores, labels = gaussian_trials(rng, 2.0, 4000)
    assert min_dcf(scores, labels, p_target=0.01)[0] > min_dcf(scores, labels, p_target=0.5)[0]


def test_det_curve_runs_from_reject_all_to_accept_all(rng):
    p_fa, p_miss, thresholds = det_curve(*gaussian_trials(rng, 1.0, 300))
    assert (p_fa[0], p_miss[0], thresholds[0]) == (0.0, 1.0, np.inf)
    assert (p_fa[-1], p_miss[-1]) == (1.0, 0.0)
    assert np.all(np.diff(p_fa) >= 0) and np.all(np.diff(p_miss) <= 0) and np.all(np.diff(thresholds) < 0)


def test_bootstrap_ci_contains_the_point_estimate_and_is_reproducible(rng):
    scores, labels = gaussian_trials(rng, 2.0, 300)
    point = eer(scores, labels)[0]
    low, high = bootstrap_ci(eer, scores, labels, n_boot=200, seed=3)
    assert low < point < high
    assert high - low < 0.15
    assert (low, high) == bootstrap_ci(eer, scores, labels, n_boot=200, seed=3)
    low_80, high_80 = bootstrap_ci(eer, scores, labels, n_boot=200, alpha=0.2, seed=3)
    assert low <= low_80 and high_80 <= high  # a lower level gives a narrower interval
    dcf_low, dcf_high = bootstrap_ci(lambda s, y: min_dcf(s, y, p_target=0.5), scores, labels, n_boot=50)
    assert 0 <= dcf_low <= dcf_high <= 1


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [1, 1], "only 2 target trials"),
        ([0.1, 0.2], [0, 0], "only 2 non-target trials"),
        ([0.1, 0.2, 0.3], [1, 0], "differ in length: 3 vs 2"),
        ([0.1, np.nan], [1, 0], "NaN"),
        ([0.1, 0.2], [1, 2], "labels must be 1 .target. or 0"),
    ],
)
def test_bad_trials_raise(scores, labels, message):
    for metric in (eer, min_dcf, det_curve):
        with pytest.raises(DlspError, match=message):
            metric(scores, labels)


def test_bad_parameters_raise():
    scores, labels = trials([0.9], [0.1])
    with pytest.raises(DlspError, match="p_target"):
        min_dcf(scores, labels, p_target=1.0)
    with pytest.raises(DlspError, match="alpha"):
        bootstrap_ci(eer, scores, labels, alpha=0)

"""dlsp.speaker.evaluate: trials, EER/minDCF summaries and the plots."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.speaker.evaluate import build_trials, det_plot, evaluate_embeddings, score_trials, summarize_scores, tsne_plot


def test_trials_hold_every_target_pair_and_sampled_nontargets():
    labels = ["a"] * 4 + ["b"] * 3 + ["c"] * 5
    trials = build_trials(labels, max_nontarget=None)
    assert trials.n_target == 6 + 3 + 10
    assert trials.n_nontarget == 66 - 19
    sampled = build_trials(labels, max_nontarget=20, seed=1)
    assert sampled.n_target == 19 and sampled.n_nontarget == 20
    pairs = set(zip(sampled.first.tolist(), sampled.second.tolist(), strict=True))
    assert len(pairs) == 39  # distinct pairs
    assert all(labels[i] != labels[j] for i, j, t in zip(sampled.first, sampled.second, sampled.target,
                                                         strict=True) if not t)


def test_trials_need_two_speakers_and_a_repeated_one():
    with pytest.raises(DlspError, match="trials need"):
        build_trials(["a", "b", "c"])
    with pytest.raises(DlspError, match="trials need"):
        build_trials(["a", "a"])


def test_perfectly_separated_scores_give_zero_eer_and_min_dcf(rng):
    target = np.r_[np.ones(200), np.zeros(800)].astype(int)
    scores = np.where(target == 1, rng.uniform(0.6, 1.0, 1000), rng.uniform(-0.2, 0.5, 1000))
    summary = summarize_scores(scores, target, n_boot=50)
    assert summary["eer"] == 0.0 and summary["min_dcf"] == 0.0
    assert scores[target == 0].max() < summary["eer_threshold"] <= scores[target == 1].min()
    assert summary["eer_ci"] == [0.0, 0.0]
    assert (summary["n_target"], summary["n_nontarget"]) == (200, 800)


def test_random_scores_give_about_fifty_percent_eer(rng):
    target = rng.integers(0, 2, 20_000)
    summary = summarize_scores(rng.standard_normal(20_000), target, n_boot=20)
    assert abs(summary["eer"] - 0.5) < 0.02
    assert summary["eer_ci"][0] < summary["eer"] < summary["eer_ci"][1] or summary["eer_ci"][0] == summary["eer"]
    assert summary["min_dcf"] > 0.9


def test_embeddings_of_separate_clusters_verify_perfectly(rng, tmp_path):
    centres = rng.standard_normal((3, 16)) * 5
    labels = np.repeat(["x", "y", "z"], 10)
    embeddings = centres[np.repeat(np.arange(3), 10)] + 0.1 * rng.standard_normal((30, 16))
    summary, scores, trials = evaluate_embeddings(embeddings, labels, n_boot=0)
    assert summary["eer"] == 0.0 and "eer_ci" not in summary
    np.testing.assert_allclose(scores, score_trials(embeddings * 3.0, trials), atol=1e-12)  # scale-free
    assert det_plot(tmp_path / "det.png", {"model": (scores, trials.target)}).stat().st_size > 1000
    assert tsne_plot(tmp_path / "tsne.png", embeddings, labels).stat().st_size > 1000

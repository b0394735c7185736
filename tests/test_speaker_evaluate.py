"""dlsp.speaker.evaluate: trials, EER/minDCF summaries and the plots."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.speaker.evaluate import (
    build_trials,
    det_plot,
    enrollment_draws,
    enrollment_scores,
    error_breakdown,
    evaluate_embeddings,
    score_trials,
    summarize_scores,
    tsne_plot,
)


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


def test_enrollment_trials_average_recordings_and_never_test_on_them(rng):
    from dlsp.metrics.verification import eer

    labels = np.repeat(["a", "b", "c"], 6)
    # Noisy clusters: single recordings confuse speakers, means of several are cleaner.
    centres = rng.standard_normal((3, 16))
    embeddings = centres[np.repeat(np.arange(3), 6)] + 1.3 * rng.standard_normal((18, 16))
    scores, target = enrollment_scores(embeddings, labels, n_enroll=3, models_per_speaker=5, seed=1)
    assert scores.shape == target.shape == (3 * 5 * 15,)  # every model against the 15 recordings it did not use
    assert target.sum() == 3 * 5 * 3  # 3 same-speaker recordings left per model
    single, single_target = enrollment_scores(embeddings, labels, n_enroll=1, models_per_speaker=5, seed=1)
    assert eer(scores, target)[0] <= eer(single, single_target)[0]
    separated = centres[np.repeat(np.arange(3), 6)] + 0.01 * rng.standard_normal((18, 16))
    assert eer(*enrollment_scores(separated, labels, n_enroll=2))[0] == 0.0
    with pytest.raises(DlspError, match="leaves none to test"):
        enrollment_scores(embeddings, labels, n_enroll=6)


def test_enrollment_draws_pick_distinct_recordings_of_speakers_that_keep_one_to_test():
    labels = np.array(["b", "a", "b", "c", "a", "b", "a", "b", "c"])  # a: 3, b: 4, c: 2 recordings
    draws = enrollment_draws(labels, 2, 4, np.random.default_rng(0))
    assert [speaker for speaker, _ in draws] == ["a"] * 4 + ["b"] * 4  # c has none left to test; sorted order
    for speaker, drawn in draws:
        assert drawn.size == 2 and np.unique(drawn).size == 2 and (labels[drawn] == speaker).all()
    rng = np.random.default_rng(0)
    assert enrollment_draws(labels, 3, 4, rng, min_speakers=2) == []  # only b has more than 3
    assert rng.integers(1 << 30) == np.random.default_rng(0).integers(1 << 30)  # and nothing was drawn


def test_error_breakdown_names_the_look_alike_pair_and_the_scattered_speaker(rng):
    # "b" and "b2" are one voice under two names; "d" is spread so widely its own recordings disagree.
    centres = {"a": rng.standard_normal(32) * 4, "b": rng.standard_normal(32) * 4, "c": rng.standard_normal(32) * 4}
    centres["b2"] = centres["b"]
    labels, rows = [], []
    for name, centre in centres.items():
        labels += [name] * 8
        rows.append(centre + 0.3 * rng.standard_normal((8, 32)))
    labels += ["d"] * 8
    rows.append(rng.standard_normal((8, 32)) * 4)
    embeddings = np.concatenate(rows)
    _, scores, trials = evaluate_embeddings(embeddings, labels, n_boot=0)
    errors = error_breakdown(scores, trials, labels, threshold=0.5, top=3)
    worst = errors["confused_pairs"][0]
    assert worst["speakers"] == ["b", "b2"] and worst["false_accept"] == 1.0 and worst["n_trials"] == 64
    assert all(p["false_accept"] == 0.0 for p in errors["confused_pairs"][1:])
    assert errors["missed_speakers"][0]["speaker"] == "d" and errors["missed_speakers"][0]["false_reject"] == 1.0
    assert errors["missed_speakers"][0]["n_trials"] == 28
    assert errors["missed_speakers"][1]["false_reject"] == 0.0
    assert len(errors["confused_pairs"]) == 3 and errors["threshold"] == 0.5

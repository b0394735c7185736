"""dlsp.speaker.scoring and the model file's scoring: AS-norm by hand, corpus-balanced rates and thresholds,
rate tables, the narrowband threshold rule, thresholds by enrolment size, and old model files that keep scoring
by raw cosine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlsp.errors import DlspError
from dlsp.metrics.verification import eer
from dlsp.models.speaker import SpeakerEncoder
from dlsp.speaker.model_file import load_speaker_model, save_speaker_model
from dlsp.speaker.scoring import (
    NARROWBAND_BELOW_HZ,
    EnrolmentThresholds,
    NarrowbandThreshold,
    RateTable,
    Scorer,
    as_norm,
    balanced_eer,
    balanced_rates,
    check_threshold,
    cohort_stats,
    narrowband_applies,
    rate_table,
    threshold_at_far,
)
from dlsp.train.checkpoint import save_checkpoint

SR = 8000


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_as_norm_equals_a_hand_computation():
    rng = np.random.default_rng(3)
    cohort = _unit(rng.standard_normal((7, 4)))
    enrolled, probe = _unit(rng.standard_normal(4)), _unit(rng.standard_normal(4))
    k = 3
    s = float(enrolled @ probe)
    top_e = np.sort(cohort @ enrolled)[::-1][:k]  # the enrolment's 3 closest cohort members
    top_t = np.sort(cohort @ probe)[::-1][:k]
    expected = 0.5 * ((s - top_e.mean()) / top_e.std() + (s - top_t.mean()) / top_t.std())
    scorer = Scorer("asnorm", 0.0, cohort, top_k=k)
    assert scorer.scores(enrolled[None], probe)[0] == pytest.approx(expected, rel=1e-12)
    # Unnormalised inputs give the same score (everything is scaled to unit length first).
    assert scorer.scores(3 * enrolled[None], 0.5 * probe)[0] == pytest.approx(expected, rel=1e-12)
    # Trials over an embedding matrix agree with the one-probe form, in either order (the norm is symmetric).
    both = np.stack([enrolled, probe])
    trial = scorer.trial_scores(both, np.array([0, 1]), np.array([1, 0]))
    np.testing.assert_allclose(trial, [expected, expected], rtol=1e-12)
    mean, std = cohort_stats(both, cohort, k)
    np.testing.assert_allclose(mean, [top_e.mean(), top_t.mean()], rtol=1e-12)
    assert as_norm(np.array([s]), (mean[:1], std[:1]), (mean[1:], std[1:]))[0] == pytest.approx(expected)


def test_top_k_larger_than_the_cohort_uses_all_of_it_and_cosine_is_the_raw_score():
    rng = np.random.default_rng(4)
    cohort = _unit(rng.standard_normal((5, 3)))
    e, t = _unit(rng.standard_normal((2, 3)))
    all_e, all_t = cohort @ e, cohort @ t
    s = e @ t
    expected = 0.5 * ((s - all_e.mean()) / all_e.std() + (s - all_t.mean()) / all_t.std())
    assert Scorer("asnorm", 0.0, cohort, top_k=50).scores(e[None], t)[0] == pytest.approx(expected)
    assert Scorer("cosine", 0.5).scores(e[None], t)[0] == pytest.approx(s)
    with pytest.raises(ValueError, match="cohort"):
        Scorer("asnorm", 0.0)


def test_balanced_rates_average_the_corpora_not_the_trials():
    # Corpus 0: 1000 non-targets, 10% at 0.9; corpus 1: 10 non-targets, none above 0.5.
    scores = np.r_[np.full(900, 0.1), np.full(100, 0.9), np.full(10, 0.2), np.full(20, 0.95)]
    target = np.r_[np.zeros(1010), np.ones(20)].astype(int)
    groups = np.r_[np.zeros(1000), np.ones(10), np.zeros(10), np.ones(10)].astype(int)
    far, frr = balanced_rates(scores, target, groups, np.array([0.5, 0.92, 1.0]))
    np.testing.assert_allclose(far, [0.05, 0.0, 0.0])  # mean of 10% and 0%, not the pooled 9.9%
    np.testing.assert_allclose(frr, [0.0, 0.0, 1.0])


def test_balanced_eer_is_the_plain_eer_for_one_corpus_and_balances_several():
    rng = np.random.default_rng(5)
    scores = np.r_[rng.normal(0.7, 0.1, 200), rng.normal(0.3, 0.1, 2000)]
    target = np.r_[np.ones(200), np.zeros(2000)].astype(int)
    assert balanced_eer(scores, target) == eer(scores, target)
    # A second corpus with higher scores all round and 10 times fewer trials.
    scores2 = np.r_[rng.normal(0.9, 0.05, 20), rng.normal(0.6, 0.05, 200)]
    target2 = np.r_[np.ones(20), np.zeros(200)].astype(int)
    pooled_s, pooled_t = np.r_[scores, scores2], np.r_[target, target2]
    groups = np.r_[np.zeros(2200), np.ones(220)].astype(int)
    rate, threshold = balanced_eer(pooled_s, pooled_t, groups)
    far, frr = balanced_rates(pooled_s, pooled_t, groups, np.array([threshold]))
    assert abs(far[0] - frr[0]) < 0.02 and abs(rate - (far[0] + frr[0]) / 2) < 0.02


def test_threshold_at_far_holds_the_rate_and_is_the_lowest_that_does():
    scores = np.r_[np.linspace(0, 1, 100), np.full(10, 2.0)]
    target = np.r_[np.zeros(100), np.ones(10)].astype(int)
    threshold = threshold_at_far(scores, target, 0.05)
    far, _ = balanced_rates(scores, target, None, np.array([threshold, np.nextafter(scores[94], -np.inf)]))
    assert far[0] == pytest.approx(0.05) and far[1] > 0.05
    assert scores[94] < threshold <= scores[95]  # the 6th highest non-target is rejected, the 5th accepted
    with pytest.raises(DlspError, match="strictly between"):
        threshold_at_far(scores, target, 0.0)


def test_threshold_at_far_in_every_corpus_holds_the_rate_in_the_worst_one():
    # Corpus 0's impostors score 0-1, corpus 1's 0.5-1.5: at 10% averaged, corpus 1 lets in far more than 10%.
    scores = np.r_[np.linspace(0, 1, 100), np.full(5, 3.0), np.linspace(0.5, 1.5, 100), np.full(5, 3.0)]
    target = np.r_[np.zeros(100), np.ones(5), np.zeros(100), np.ones(5)].astype(int)
    groups = np.repeat([0, 1], 105)
    mean_rule = threshold_at_far(scores, target, 0.1, groups)
    every = threshold_at_far(scores, target, 0.1, groups, every_group=True)
    from dlsp.speaker.scoring import corpus_rates

    per_corpus = corpus_rates(scores, target, groups, np.array([mean_rule, every]))[0]
    assert per_corpus[:, 0].mean() <= 0.1 and per_corpus[1, 0] > 0.1  # the mean holds, corpus 1 does not
    assert per_corpus[:, 1].max() == pytest.approx(0.1) and per_corpus[0, 1] == 0.0  # every corpus holds
    assert every > mean_rule
    assert threshold_at_far(scores[:105], target[:105], 0.1, groups[:105], every_group=True) == \
        threshold_at_far(scores[:105], target[:105], 0.1, groups[:105])  # one corpus: the same rule


def test_rate_table_reads_back_and_refuses_bad_tables():
    rng = np.random.default_rng(6)
    scores = np.r_[rng.normal(2, 1, 300), rng.normal(0, 1, 3000)]
    target = np.r_[np.ones(300), np.zeros(3000)].astype(int)
    table = rate_table(scores, target, extra=[1.234])
    assert 1.234 in table.score and np.all(np.diff(table.score) > 0) and np.all(np.diff(table.far) <= 0)
    assert table.far_at(1.234) == pytest.approx(float(np.mean(scores[target == 0] >= 1.234)))
    again = RateTable.from_dict(table.to_dict())
    np.testing.assert_array_equal(again.far, table.far)
    for bad in ({"score": [1, 0], "far": [0.5, 0.1], "frr": [0, 1]}, {"score": [0, 1], "far": [2, 0], "frr": [0, 1]},
                {"score": [0, 1]}, [1, 2]):
        with pytest.raises(ValueError):
            RateTable.from_dict(bad)


def test_user_thresholds_are_checked_for_the_score():
    assert check_threshold(3.5, Scorer("asnorm", 1.0, np.eye(2))) == 3.5
    with pytest.raises(DlspError, match=r"cosine similarity in \[-1, 1\]"):
        check_threshold(1.5, Scorer("cosine", 0.5))
    with pytest.raises(DlspError, match="finite"):
        check_threshold(float("nan"), Scorer("asnorm", 1.0, np.eye(2)))


def test_the_narrowband_rule_picks_its_threshold_below_its_limit_and_leaves_scores_alone():
    table = RateTable(np.array([0.0, 4.0]), np.array([0.5, 0.0]), np.array([0.0, 0.5]))
    rule = NarrowbandThreshold(NARROWBAND_BELOW_HZ, 3.98, table)
    scorer = Scorer("asnorm", 0.137, np.eye(3), top_k=2, narrow=rule)
    assert NARROWBAND_BELOW_HZ == 5000.0
    assert scorer.threshold_for(3400.0) == 3.98 and scorer.is_narrowband(3400.0)
    assert scorer.threshold_for(4999.0) == 3.98 and scorer.threshold_for(5000.0) == 0.137  # below, not at
    assert scorer.threshold_for(7800.0) == 0.137 and not scorer.is_narrowband(7800.0)
    plain = Scorer("asnorm", 0.137, np.eye(3), top_k=2)
    assert plain.threshold_for(3400.0) == 0.137 and not plain.is_narrowband(3400.0)
    # The rule changes the threshold only: scores and the scoring's id (what database calibrations name) stay.
    e, t = np.array([1.0, 0.2, 0.0]), np.array([0.3, 1.0, 0.1])
    assert scorer.scores(e[None], t)[0] == plain.scores(e[None], t)[0] and scorer.score_id == plain.score_id


def _sized(n, threshold, narrow=None):
    table = RateTable(np.array([0.0, 4.0]), np.array([0.5, 0.0]), np.array([0.0, 0.5 + n / 100]))
    rule = None if narrow is None else NarrowbandThreshold(NARROWBAND_BELOW_HZ, narrow, table)
    return EnrolmentThresholds(n, threshold, table, rule)


def test_the_thresholds_for_a_person_come_from_the_nearest_enrolment_size_at_or_above():
    base = Scorer("asnorm", 2.0, np.eye(3), top_k=2, narrow=NarrowbandThreshold(NARROWBAND_BELOW_HZ, 4.0),
                  enrolled=3, by_enrolment=(_sized(5, 2.4, 4.4), _sized(1, 1.5, 3.5), _sized(3, 2.1, 4.1)))
    picked = {n: base.for_enrolment(n) for n in (1, 2, 3, 4, 5, 9)}
    assert {n: s.threshold for n, s in picked.items()} == {1: 1.5, 2: 2.1, 3: 2.1, 4: 2.4, 5: 2.4, 9: 2.4}
    assert {n: s.enrolled for n, s in picked.items()} == {1: 1, 2: 3, 3: 3, 4: 5, 5: 5, 9: 5}
    assert picked[1].narrow.threshold == 3.5 and picked[1].threshold_for(3400.0) == 3.5
    assert picked[2].table is base.by_enrolment[2].table
    # Only the thresholds move: scores and the scoring's id (what database calibrations name) stay.
    e, t = np.array([1.0, 0.2, 0.0]), np.array([0.3, 1.0, 0.1])
    assert picked[1].scores(e[None], t)[0] == base.scores(e[None], t)[0] and picked[1].score_id == base.score_id
    assert picked[1].for_enrolment(5).threshold == 2.4  # picking again picks from the same sizes
    plain = Scorer("cosine", 0.3, enrolled=3)
    assert plain.for_enrolment(1) is plain  # no thresholds by size: the one threshold for everyone


def test_model_file_keeps_the_thresholds_by_enrolment_size(tmp_path):
    rule = NarrowbandThreshold(3000.0, 0.7)
    sizes = (_sized(1, 0.2, None), _sized(5, 0.4, None))
    sizes = tuple(EnrolmentThresholds(e.enrolled, e.threshold, e.table, NarrowbandThreshold(3000.0, 0.6 + e.enrolled
                                                                                             / 100)) for e in sizes)
    scorer = Scorer("cosine", 0.3, narrow=rule, by_enrolment=sizes)
    path = save_speaker_model(tmp_path / "m.pt", _encoder(), "gru", sample_rate=SR, threshold=0.3, trim_db=40.0,
                              scorer=scorer, config={"score": {"enroll_clips": 3}})
    loaded = load_speaker_model(path).scorer
    assert loaded.enrolled == 3 and [e.enrolled for e in loaded.by_enrolment] == [1, 5]
    assert [e.threshold for e in loaded.by_enrolment] == [0.2, 0.4]
    assert [e.narrow.threshold for e in loaded.by_enrolment] == [0.61, 0.65]
    np.testing.assert_array_equal(loaded.by_enrolment[1].table.frr, sizes[1].table.frr)
    assert loaded.for_enrolment(2).threshold == 0.4 and loaded.for_enrolment(1).narrow.threshold == 0.61
    assert load_speaker_model(save_speaker_model(tmp_path / "p.pt", _encoder(), "gru", sample_rate=SR,
                                                 threshold=0.3, trim_db=40.0, config={"score": {"enroll_clips": 0}})
                              ).scorer.by_enrolment == ()  # none written, none read; pairs count as 1
    assert load_speaker_model(tmp_path / "p.pt").scorer.enrolled == 1


def test_only_models_that_see_above_the_limit_get_a_narrowband_rule():
    assert narrowband_applies(16000) and narrowband_applies(44100)
    assert not narrowband_applies(8000) and not narrowband_applies(11025)  # Nyquist at or just above 5 kHz


def _encoder():
    torch.manual_seed(0)
    return SpeakerEncoder(sample_rate=SR, n_fft=256, hop_length=128, hidden=8, embedding_dim=4)


def test_model_file_stores_the_cohort_threshold_and_table(tmp_path):
    rng = np.random.default_rng(7)
    cohort = _unit(rng.standard_normal((30, 4))).astype(np.float32)
    table = rate_table(np.r_[rng.normal(3, 1, 50), rng.normal(0, 1, 500)], np.r_[np.ones(50), np.zeros(500)])
    scorer = Scorer("asnorm", 2.25, cohort, top_k=10, table=table)
    path = save_speaker_model(tmp_path / "m.pt", _encoder(), "gru", sample_rate=SR, threshold=0.4, trim_db=40.0,
                              scorer=scorer, window_seconds=2.0, hop_seconds=0.5)
    loaded = load_speaker_model(path)
    assert loaded.threshold == 0.4 and loaded.scorer.threshold == 2.25 and loaded.scorer.top_k == 10
    assert (loaded.window_seconds, loaded.hop_seconds) == (2.0, 0.5)
    np.testing.assert_array_equal(loaded.scorer.cohort, cohort.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(loaded.scorer.table.far, table.far)
    assert loaded.scorer.score_id == Scorer("asnorm", 0.0, loaded.scorer.cohort, 10).score_id != "cosine"
    assert path.stat().st_size < 10 * 2**20
    assert loaded.scorer.narrow is None  # written without a narrowband rule: none comes back


def test_model_file_keeps_the_narrowband_rule(tmp_path):
    rng = np.random.default_rng(8)
    cohort = _unit(rng.standard_normal((30, 4))).astype(np.float32)
    wide = rate_table(np.r_[rng.normal(3, 1, 50), rng.normal(0, 1, 500)], np.r_[np.ones(50), np.zeros(500)])
    narrow = rate_table(np.r_[rng.normal(6, 1, 50), rng.normal(3, 1, 500)], np.r_[np.ones(50), np.zeros(500)])
    rule = NarrowbandThreshold(3000.0, 3.98, narrow)  # within an 8 kHz model's band (Nyquist 4 kHz)
    scorer = Scorer("asnorm", 0.137, cohort, top_k=10, table=wide, narrow=rule)
    path = save_speaker_model(tmp_path / "m.pt", _encoder(), "gru", sample_rate=SR, threshold=0.4, trim_db=40.0,
                              scorer=scorer)
    loaded = load_speaker_model(path).scorer
    assert loaded.threshold == 0.137 and loaded.narrow.below_hz == 3000.0 and loaded.narrow.threshold == 3.98
    np.testing.assert_array_equal(loaded.narrow.table.score, narrow.score)
    np.testing.assert_array_equal(loaded.narrow.table.far, narrow.far)
    np.testing.assert_array_equal(loaded.table.far, wide.far)
    assert torch.load(path, weights_only=True)["scoring"]["narrow"]["threshold"] == 3.98  # plain data
    no_table = Scorer("cosine", 0.3, narrow=NarrowbandThreshold(3000.0, 0.6))
    again = load_speaker_model(save_speaker_model(tmp_path / "c.pt", _encoder(), "gru", sample_rate=SR,
                                                  threshold=0.3, trim_db=40.0, scorer=no_table)).scorer
    assert again.narrow == NarrowbandThreshold(3000.0, 0.6, None)


def test_old_model_files_score_by_cosine_with_default_windows(tmp_path):
    encoder = _encoder()
    path = save_checkpoint(tmp_path / "old.pt", encoder, "gru", task="speaker", sample_rate=SR, threshold=0.61,
                           trim_db=40.0, model_id="old", config={})  # as files were written before issue 22
    loaded = load_speaker_model(path)
    assert loaded.scorer.kind == "cosine" and loaded.scorer.threshold == 0.61 and loaded.scorer.table is None
    assert loaded.scorer.narrow is None
    assert (loaded.window_seconds, loaded.hop_seconds) == (3.0, 1.5)


@pytest.mark.parametrize("edit, message", [
    ({"scoring": {"kind": "znorm", "threshold": 1.0}}, "bad 'scoring'"),
    ({"scoring": {"kind": "asnorm", "threshold": 1.0, "top_k": 5}}, "cohort must be"),
    ({"scoring": {"kind": "asnorm", "threshold": 1.0, "top_k": 5}, "cohort": torch.zeros(3, 7)}, "cohort must be"),
    ({"scoring": {"kind": "cosine", "threshold": "high"}}, "bad scoring threshold"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "table": {"score": [1, 0]}}}, "bad scoring table"),
    ({"window_seconds": 1.0, "hop_seconds": 2.0}, "bad windows"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "narrow": [3000, 0.6]}}, "bad scoring 'narrow'"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "narrow": {"threshold": 0.6}}}, "bad narrowband below_hz"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "narrow": {"below_hz": True, "threshold": 0.6}}},
     "bad narrowband below_hz"),
    # 5 kHz is above an 8 kHz model's Nyquist frequency: every probe would count as narrowband.
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "narrow": {"below_hz": 5000.0, "threshold": 0.6}}},
     "bad narrowband below_hz 5000.0"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "narrow": {"below_hz": 3000.0, "threshold": float("nan")}}},
     "bad narrowband threshold"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5,
                  "narrow": {"below_hz": 3000.0, "threshold": 0.6, "table": {"score": [0, 1]}}}},
     "bad narrowband table"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "by_enrolment": {"1": 0.4}}}, "bad scoring 'by_enrolment'"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "by_enrolment": [0.4]}}, "bad scoring 'by_enrolment' entry"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "by_enrolment": [{"enrolled": 0, "threshold": 0.4}]}},
     "bad enrolment size 0"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5,
                  "by_enrolment": [{"enrolled": 2, "threshold": 0.4}, {"enrolled": 2, "threshold": 0.6}]}},
     "bad enrolment size 2"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "by_enrolment": [{"enrolled": 2, "threshold": None}]}},
     "bad threshold None for speaker models of 2"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5,
                  "by_enrolment": [{"enrolled": 2, "threshold": 0.4, "table": {"score": [0]}}]}},
     "bad rate table for speaker models of 2"),
    # A narrowband probe would meet a wideband threshold for people of this size.
    ({"scoring": {"kind": "cosine", "threshold": 0.5, "narrow": {"below_hz": 3000.0, "threshold": 0.6},
                  "by_enrolment": [{"enrolled": 2, "threshold": 0.4}]}},
     "of 2 recordings lack a narrowband rule the file has"),
    ({"scoring": {"kind": "cosine", "threshold": 0.5,
                  "by_enrolment": [{"enrolled": 2, "threshold": 0.4,
                                    "narrow": {"below_hz": 3000.0, "threshold": 0.6}}]}},
     "of 2 recordings have a narrowband rule the file lacks"),
])
def test_damaged_scoring_fields_are_refused_in_one_line(tmp_path, edit, message):
    path = save_checkpoint(tmp_path / "bad.pt", _encoder(), "gru", task="speaker", sample_rate=SR, threshold=0.5,
                           trim_db=40.0, model_id="x", config={}, **edit)
    with pytest.raises(DlspError, match=message) as caught:
        load_speaker_model(path)
    assert "\n" not in str(caught.value) and caught.value.path == str(path)

"""dlsp.speaker.data and dlsp.speaker.train: splits, batches, overfitting two speakers, run folders, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.config import apply_overrides
from dlsp.data.index import AudioItem
from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.errors import DlspError
from dlsp.metrics.verification import eer
from dlsp.models.speaker import SpeakerEncoder
from dlsp.speaker.data import (
    SegmentSampler,
    SpeakerClips,
    SpeakerDataConfig,
    assign_splits,
    perturb_speed,
    segment,
)
from dlsp.speaker.evaluate import build_trials, score_trials
from dlsp.speaker.model_file import load_speaker_model
from dlsp.speaker.objectives import (
    AmSoftmaxGe2eLoss,
    AmSoftmaxLoss,
    EncoderWithLoss,
    Ge2eLoss,
    PairLoss,
)
from dlsp.speaker.scoring import Scorer
from dlsp.speaker.train import SpeakerTrainConfig, embed_clips, load_data, make_step, train_run
from dlsp.train.loop import fit

SR = 8000
TINY_ARGS = "model.args={features: logmel, n_mels: 20, n_fft: 256, hop_length: 128, hidden: 24, embedding_dim: 8}"
TINY = [TINY_ARGS, f"data.sample_rate={SR}", "data.segment_seconds=0.5", "data.segments_per_epoch=32",
        "data.val_fraction=0.4", "train.batch_size=16", "train.device=cpu", "train.patience=null"]


def _item(speaker, split=None):
    return AudioItem(path=__import__("pathlib").Path(f"/x/{speaker}/{split}.wav"), label=None, speaker=speaker,
                     duration=1.0, sample_rate=SR, split=split)


def test_splits_keep_official_speaker_splits_and_named_speakers():
    indexed = [("ar/1", _item("1", "train")), ("ar/2", _item("2", "val")), ("fsdd/theo", _item("theo", "train")),
               ("fsdd/theo", _item("theo", "test")), ("fsdd/lucas", _item("lucas", "test")),
               ("fsdd/lucas", _item("lucas", "train"))]
    config = SpeakerDataConfig(val_fraction=0.0, test_speakers=["theo"])
    assert assign_splits(indexed, config, 0) == {"ar/1": "train", "ar/2": "val", "fsdd/theo": "test",
                                                 "fsdd/lucas": "train"}
    with pytest.raises(DlspError, match="not in the data: nobody"):
        assign_splits(indexed, SpeakerDataConfig(val_speakers=["nobody"]), 0)


def test_free_speakers_are_split_disjointly_by_fraction():
    indexed = [(f"d/s{i}", _item(f"s{i}")) for i in range(10) for _ in range(3)]
    splits = assign_splits(indexed, SpeakerDataConfig(val_fraction=0.3), 0)
    assert sorted(splits.values()).count("val") == 3 and len(splits) == 10


def test_segments_have_fixed_length_and_short_clips_repeat(rng):
    clip = np.arange(10, dtype=np.float32)
    cut = segment(clip, 25, rng)
    assert cut.size == 25 and np.all(np.diff(cut)[np.diff(cut) != -9] == 1)  # a rotation of the clip, repeated
    assert segment(np.arange(100, dtype=np.float32), 25, rng).size == 25


def _two_speaker_clips(n=4, seconds=0.6):
    speakers = make_speakers(6, seed=4)[2:4]  # neighbours in pitch and tract length: not trivially apart
    audio = [synth_utterance(s, seconds, SR, rng=100 * i + j) for i, s in enumerate(speakers) for j in range(n)]
    return SpeakerClips(audio, np.repeat(np.arange(2), n), [s.name for s in speakers])


def test_pair_batches_pair_same_and_different_speakers():
    clips = perturb_speed(_two_speaker_clips(), [0.9, 1.0], SR)
    assert len(clips.speakers) == 4 and len(clips) == 16
    sampler = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.25))
    first, second, same = next(sampler.pair_batches(0, 0, 8, 8))
    assert first.shape == second.shape == (8, 2000) and same.tolist() == [1, 0] * 4
    again = next(sampler.pair_batches(0, 0, 8, 8))
    assert np.array_equal(first, again[0])  # an epoch's batches are reproducible


def test_noise_augmentation_mixes_at_the_drawn_snr_and_is_reproducible():
    from dlsp.audio.mixing import measure_snr

    clips = _two_speaker_clips()
    config = SpeakerDataConfig(sample_rate=SR, segment_seconds=0.4, noise_prob=1.0, noise_snr=[10.0, 10.0])
    sampler = SegmentSampler(clips, config, seed=3)
    clean = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.4))
    x = sampler.cut(0, np.random.default_rng(1))
    reference = clean.cut(0, np.random.default_rng(1))  # same crop: the noise is drawn after it
    assert measure_snr(reference, x - reference) == pytest.approx(10.0, abs=0.05)  # no clipping guard here
    assert np.array_equal(x, sampler.cut(0, np.random.default_rng(1)))
    assert len(sampler.noises) == 12 and not clean.noises
    off = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.4, noise_prob=0.0))
    assert np.array_equal(off.cut(0, np.random.default_rng(1)), reference)


def test_eq_augmentation_colours_about_half_the_segments_within_the_gain():
    clips = _two_speaker_clips()
    plain = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.4))
    coloured = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.4, eq_db=12.0))
    changed, worst = 0, 0.0
    for seed in range(200):
        x = coloured.cut(seed % len(clips), np.random.default_rng(seed))
        reference = plain.cut(seed % len(clips), np.random.default_rng(seed))  # same crop: EQ is drawn after it
        if not np.array_equal(x, reference):
            changed += 1
            ratio = np.abs(np.fft.rfft(x)) / (np.abs(np.fft.rfft(reference)) + 1e-9)
            loud = np.abs(np.fft.rfft(reference)) > 0.1 * np.abs(np.fft.rfft(reference)).max()
            worst = max(worst, float(np.abs(20 * np.log10(ratio[loud])).max()))
    assert 70 <= changed <= 130  # probability 0.5
    assert 1.0 < worst < 3 * 12.0 + 3  # 3 bands of at most 12 dB each (plus edge effects of a short segment)
    assert np.array_equal(coloured.cut(0, np.random.default_rng(5)), coloured.cut(0, np.random.default_rng(5)))


@pytest.mark.parametrize("bad", [{"noise_prob": 1.5}, {"noise_snr": [20.0, 5.0]}, {"band_limit_prob": -0.1},
                                 {"eq_db": -3.0}])
def test_bad_augmentation_settings_are_refused(bad):
    with pytest.raises(DlspError, match="data\\."):
        SegmentSampler(_two_speaker_clips(), SpeakerDataConfig(sample_rate=SR, **bad))


@pytest.mark.parametrize("objective,backbone", [("amsoftmax", "gru"), ("bce", "gru"), ("amsoftmax_ge2e", "gru"),
                                                ("amsoftmax", "tdnn")])
def test_overfits_two_synthetic_speakers(objective, backbone):
    torch.manual_seed(0)
    clips = _two_speaker_clips()
    encoder = SpeakerEncoder(sample_rate=SR, features="logmel", n_mels=20, n_fft=256, hop_length=128, hidden=24,
                             embedding_dim=8, backbone=backbone, tdnn_channels=64)
    sampler = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.4))
    encoder.fit_normalizer(torch.from_numpy(np.stack([sampler.cut(i, np.random.default_rng(i)) for i in range(8)])))
    loss = {"amsoftmax": AmSoftmaxLoss(2, 8, scale=10.0, margin=0.2), "bce": PairLoss("bce"),
            "amsoftmax_ge2e": AmSoftmaxGe2eLoss(2, 8, per_speaker=4, scale=10.0, margin=0.2)}[objective]
    wrapped = EncoderWithLoss(encoder, loss)
    batches = {"amsoftmax": lambda e: sampler.class_batches(0, e, 64, 16),
               "bce": lambda e: sampler.pair_batches(0, e, 32, 8),
               "amsoftmax_ge2e": lambda e: sampler.grouped_batches(0, e, 64, 2, 4)}[objective]
    result = fit(wrapped, make_step(objective, torch.device("cpu")), torch.optim.Adam(wrapped.parameters(), 3e-3),
                 batches, epochs=25, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    trials = build_trials(clips.labels, max_nontarget=None)
    rate, _ = eer(score_trials(embed_clips(encoder, clips.audio, torch.device("cpu")), trials), trials.target)
    assert rate == 0.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_synthetic_corpus(tmp_path_factory.mktemp("synth") / "c", seed=5, n_speakers=5,
                                 utterances_per_speaker=4, utterance_seconds=(0.6, 1.0), noise_files_per_kind=1,
                                 noise_seconds=0.5, sample_rate=SR, progress=False)


def test_run_folder_model_file_and_resume(corpus, tmp_path):
    config = apply_overrides(SpeakerTrainConfig(), [*TINY, "train.epochs=2"])
    data = load_data(config, [corpus / "speech"], progress=False)
    assert len(data.splits["val"]) == 2 and not set(data.splits["val"]) & set(data.splits["train"])
    run = tmp_path / "run"
    _, result = train_run(config, data, run, progress=False, log=lambda *a: None)
    for name in ("config.yaml", "metrics.jsonl", "best.pt", "last.pt", "curves.png", "splits.json", "results.json"):
        assert (run / name).exists(), name
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(0 <= line["val_eer"] <= 1 for line in lines)
    loaded = load_speaker_model(run / "best.pt")
    best = lines[result.best_epoch]
    assert loaded.threshold == pytest.approx(best["val_threshold"]) and loaded.val_eer == best["val_eer"]
    assert best["val_eer"] == min(line["val_eer"] for line in lines)  # chosen by validation EER
    longer = apply_overrides(config, ["train.epochs=3"])
    with pytest.warns(UserWarning, match=r"differs from the run's .*: train\.epochs 2 -> 3"):
        _, resumed = train_run(longer, data, run, resume=True, progress=False, log=lambda *a: None)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_cli_train_and_bad_input(corpus, tmp_path, cli):
    sets = [a for item in TINY for a in ("--set", item)]
    code, out, err = cli("speaker", "train", "--data", corpus / "speech", "--out", tmp_path / "r", "--epochs", "1",
                         "--quiet", *sets)
    assert code == 0, err
    assert "validation EER" in out and (tmp_path / "r" / "best.pt").exists()
    # An existing run is refused (and left as it was) unless it is continued or started over.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")}
    code, _, err = cli("speaker", "train", "--data", corpus / "speech", "--out", tmp_path / "r", "--quiet", *sets)
    assert code == 2 and "use --resume to continue it or --overwrite" in err and err.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")} == before
    code, _, err = cli("speaker", "train", "--data", corpus / "speech", "--out", tmp_path / "r", "--quiet",
                       "--resume", "--epochs", "2")
    assert code == 0, err
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2
    code, _, err = cli("speaker", "train", "--data", corpus / "speech", "--out", tmp_path / "r", "--quiet",
                       "--overwrite", "--epochs", "1", *sets)
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "results.json").read_text())["epochs"] == 1
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1
    # The run remembers its data folders: --resume alone continues it.
    code, _, err = cli("speaker", "train", "--out", tmp_path / "r", "--quiet", "--resume", "--epochs", "2")
    assert code == 0, err
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2
    code, _, err = cli("speaker", "train", "--out", tmp_path / "r2")
    assert code == 2 and "--data" in err
    code, _, err = cli("speaker", "train", "--data", corpus / "speech", "--out", tmp_path / "r3", "--quiet",
                       "--set", "train.objective=triplet")
    assert code == 2 and "unknown objective 'triplet'" in err
    for bad in ("train.per_speaker=0", "train.per_speaker=40"):  # no group, or one speaker per batch of 64
        code, _, err = cli("speaker", "train", "--data", corpus / "speech", "--out", tmp_path / "r4", "--quiet",
                           "--set", "train.objective=ge2e", "--set", bad)
        assert code == 2 and "per_speaker" in err and "Traceback" not in err
    code, _, err = cli("speaker", "train", "--data", corpus / "speech", "--out", tmp_path / "r4", "--resume")
    assert code == 2 and "nothing to resume" in err


def test_ge2e_loss_matches_its_definition_term_by_term():
    torch.manual_seed(0)
    loss = Ge2eLoss(per_speaker=3)
    e = torch.nn.functional.normalize(torch.randn(12, 5), dim=-1)
    grouped = e.view(4, 3, 5)
    expected = 0.0
    for j in range(4):
        for i in range(3):
            centroids = [torch.cat([grouped[k, :i], grouped[k, i + 1:]]).mean(0) if k == j else grouped[k].mean(0)
                         for k in range(4)]  # its own speaker's centroid leaves it out
            logits = torch.stack([loss.scale * torch.cosine_similarity(grouped[j, i], c, dim=0) + loss.bias
                                  for c in centroids])
            expected -= torch.log_softmax(logits, 0)[j].item() / 12
    assert loss(e).item() == pytest.approx(expected, rel=1e-5)
    tight = torch.nn.functional.normalize(torch.eye(4, 5).repeat_interleave(3, 0) + 0.01 * torch.randn(12, 5), dim=-1)
    assert loss(tight).item() < loss(e).item()
    with pytest.raises(ValueError, match="groups of 3"):
        loss(e[:10])
    with pytest.raises(ValueError, match="at least 2"):
        Ge2eLoss(per_speaker=1)


def test_grouped_batches_hold_whole_groups_of_distinct_speakers():
    clips = perturb_speed(_two_speaker_clips(), [0.9, 1.0, 1.1], SR)  # 6 speakers of 4 clips
    sampler = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.25))
    batches = list(sampler.grouped_batches(0, 0, 36, 3, 4))
    assert len(batches) == 3
    for segments, labels in batches:
        assert segments.shape == (12, 2000)
        groups = labels.reshape(3, 4)
        assert (groups == groups[:, :1]).all() and len(set(groups[:, 0])) == 3
    assert np.array_equal(batches[0][0], next(sampler.grouped_batches(0, 0, 36, 3, 4))[0])
    with pytest.raises(DlspError, match="per_speaker"):
        next(sampler.grouped_batches(0, 0, 36, 3, 1))


def test_pair_losses_reward_close_same_and_far_different_pairs():
    e = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    same, different = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])
    contrastive = PairLoss("contrastive", margin=0.3)
    assert contrastive(e, e, same).item() == 0.0  # identical same-speaker pairs
    assert contrastive(e, e.flip(0), different).item() == 0.0  # orthogonal (cosine 0 < margin) different pairs
    assert contrastive(e, e, different).item() == pytest.approx(0.7**2)
    bce = PairLoss("bce")
    assert bce(e, e, same).item() < bce(e, e.flip(0), same).item()
    assert bce(e, e.flip(0), different).item() < bce(e, e, different).item()
    with pytest.raises(ValueError, match="pair objective"):
        PairLoss("triplet")


def _corpus_clips(counts):
    """Clips of speakers `<corpus>/s<i>` (3 tiny clips each) for corpora of the given speaker counts."""
    names = [f"{corpus}/s{i}" for corpus, n in counts.items() for i in range(n)]
    audio = [np.full(800, 0.1 * (k + 1), np.float32) for k in range(3 * len(names))]
    return SpeakerClips(audio, np.repeat(np.arange(len(names)), 3), names)


@pytest.mark.parametrize("balance, share_b", [("speaker", 0.1), ("corpus", 0.5), ("sqrt", 0.25)])
def test_balance_draws_corpora_as_documented(balance, share_b):
    clips = _corpus_clips({"a": 9, "b": 1})  # sqrt: a gets 3 / (3 + 1)
    sampler = SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, segment_seconds=0.05, balance=balance))
    labels = np.concatenate([b[1] for b in sampler.class_batches(0, 0, 8000, 500)])
    drawn_b = np.mean([clips.speakers[s].startswith("b/") for s in labels])
    assert drawn_b == pytest.approx(share_b, abs=0.02)
    a_counts = np.bincount(labels[labels < 9], minlength=9)
    assert a_counts.min() > 0.7 * a_counts.mean()  # speakers of a corpus evenly
    for _, group in sampler.grouped_batches(0, 0, 64, 4, 2):
        assert len(set(group.tolist())) == 4  # still distinct speakers per batch
    with pytest.raises(DlspError, match=r"data\.balance"):
        SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, balance="minutes"))


def test_crops_have_one_drawn_length_per_batch_within_the_range():
    clips = _two_speaker_clips()
    config = SpeakerDataConfig(sample_rate=SR, crop_seconds=[0.25, 0.5])
    sampler = SegmentSampler(clips, config)
    lengths = set()
    for segments, _ in sampler.class_batches(0, 0, 160, 8):
        assert 2000 <= segments.shape[1] <= 4000
        lengths.add(segments.shape[1])
    assert len(lengths) > 5  # varies from batch to batch
    first, second, _ = next(sampler.pair_batches(0, 1, 8, 8))
    assert first.shape == second.shape and 2000 <= first.shape[1] <= 4000
    again = next(SegmentSampler(clips, config).class_batches(0, 0, 8, 8))[0]
    assert np.array_equal(again, next(sampler.class_batches(0, 0, 8, 8))[0])  # reproducible
    for bad in ([0.5], [0.5, 0.25], [0.0, 1.0]):
        with pytest.raises(DlspError, match=r"data\.crop_seconds"):
            SegmentSampler(clips, SpeakerDataConfig(sample_rate=SR, crop_seconds=bad))


def test_named_speaker_sets_resolve_through_dlsp_data_holdout():
    from dlsp.data.holdout import ARABIC_HELD_OUT, SPEECHOCEAN_HELD_OUT

    ocean = [f"SPEAKER{n:04d}" for n in range(1, 1000, 7)] + list(SPEECHOCEAN_HELD_OUT)
    indexed = [(f"speechocean762/{s}", _item(s)) for s in ocean]
    indexed += [(f"arabic_commands/{s}", _item(s, "val")) for s in ARABIC_HELD_OUT]
    indexed += [("arabic_commands/00000001", _item("00000001", "train"))]
    config = SpeakerDataConfig(val_fraction=0.0, val_speakers=["@speechocean762", "@arabic", "@fsdd"])
    splits = assign_splits(indexed, config, 0)  # @fsdd: none of its speakers is here, so it is skipped
    val = sorted(k for k, v in splits.items() if v == "val")
    assert val == sorted([f"speechocean762/{s}" for s in SPEECHOCEAN_HELD_OUT]
                         + [f"arabic_commands/{s}" for s in ARABIC_HELD_OUT])
    assert {v for k, v in splits.items() if k not in val} == {"train"}
    with pytest.raises(DlspError, match="only partly in the data: missing SPEAKER0001"):
        assign_splits([i for i in indexed if not i[0].endswith("SPEAKER0001")], config, 0)
    with pytest.raises(DlspError, match="unknown speaker set '@librispeech'"):
        assign_splits(indexed, SpeakerDataConfig(val_speakers=["@librispeech"]), 0)


def test_validation_trials_stay_within_each_corpus():
    from dlsp.speaker.validation import corpus_trials

    clips = _corpus_clips({"a": 3, "b": 2, "c": 1})  # c has one speaker: no trials of its own
    trials, groups, names = corpus_trials(clips)
    corpus = np.asarray([clips.speakers[label].split("/")[0] for label in clips.labels])
    assert names == ["a", "b", "c"] and set(groups.tolist()) == {0, 1}
    assert np.array_equal(corpus[trials.first], corpus[trials.second])
    assert np.array_equal(corpus[trials.first], np.asarray(names)[groups])
    assert trials.target.size == 9 * 8 // 2 + 6 * 5 // 2  # every pair within a and within b


def test_enrolled_trials_score_speaker_models_against_every_other_clip_of_their_corpus():
    from dlsp.speaker.evaluate import enrolled_trials, unit_rows

    clips = _corpus_clips({"a": 3, "b": 2, "c": 1})  # c has one speaker: no trials of its own
    clips.labels[-1] = 0  # a's first speaker gets a fourth clip; everyone else has 3 (c's speaker 2)
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((clips.labels.size, 6)).astype(np.float32)
    corpus = np.asarray([clips.speakers[label].split("/")[0] for label in clips.labels])
    rows, trials, groups, names = enrolled_trials(embeddings, clips.labels, corpus, 2, models_per_speaker=4)
    assert names == ["a", "b", "c"] and set(groups.tolist()) == {0, 1}
    models = np.unique(trials.first)
    assert models.size == 4 * (3 + 2) and models.min() == embeddings.shape[0]  # appended rows
    np.testing.assert_array_equal(rows[: embeddings.shape[0]], embeddings)
    for model in models:
        tested = trials.second[trials.first == model]
        own = np.flatnonzero(corpus == names[groups[trials.first == model][0]])
        # The model is the mean of 2 unit embeddings of one speaker of this corpus, neither of them tested.
        enrolled = np.setdiff1d(own, tested)
        assert enrolled.size == 2 and np.unique(clips.labels[enrolled]).size == 1
        np.testing.assert_allclose(rows[model], unit_rows(embeddings[enrolled]).mean(axis=0), atol=1e-6)
        is_target = trials.target[trials.first == model].astype(bool)
        assert np.array_equal(is_target, clips.labels[tested] == clips.labels[enrolled[0]])
    with pytest.raises(DlspError, match="2 or more speakers of more than 3"):  # only a's 4-clip speaker qualifies
        enrolled_trials(embeddings, clips.labels, corpus, 3, models_per_speaker=4)


def test_thresholds_set_on_enrolled_models_hold_their_false_accept_rate_there():
    from dlsp.speaker.evaluate import enrolled_trials
    from dlsp.speaker.scoring import threshold_at_far
    from dlsp.speaker.validation import ScoreSection, calibrate_scoring, check_score, scoring_line

    encoder, train, val = _wideband_validation()
    score = ScoreSection(window_seconds=0, cohort=True, cohort_per_speaker=2, top_k=3, target_far=0.2,
                         enroll_clips=2)
    scorer, summary = calibrate_scoring(encoder, train, val, score, torch.device("cpu"), 16000)
    embeddings = embed_clips(encoder, val.audio, torch.device("cpu"))
    corpora = [val.speakers[label].split("/")[0] for label in val.labels]
    rows, trials, groups, _ = enrolled_trials(embeddings, val.labels, corpora, 2)
    scores = scorer.trial_scores(rows, trials.first, trials.second)
    assert scorer.threshold == pytest.approx(threshold_at_far(scores, trials.target, 0.2, groups), abs=1e-9)
    assert summary["enroll_clips"] == 2 and "on speaker models of 2 clips vs one" in scoring_line(summary)
    assert scorer.narrow.table.far_at(scorer.narrow.threshold) <= 0.2 + 1e-9
    with pytest.raises(DlspError, match=r"score\.enroll_clips"):
        check_score(ScoreSection(enroll_clips=-1))
    with pytest.raises(DlspError, match=r"score\.far_over_corpora is one of mean, every, got 'max'"):
        check_score(ScoreSection(far_over_corpora="max"))
    for sizes in ([0, 3], [3, 3]):
        with pytest.raises(DlspError, match=r"score\.enroll_sizes are distinct numbers of clips"):
            check_score(ScoreSection(enroll_sizes=sizes))


def _write_corpus(root, speakers, takes=3, seed=0):
    from dlsp.audio.io import save_audio

    for i, speaker in enumerate(speakers):
        for j in range(takes):
            save_audio(root / speaker.name / f"{j}.wav", synth_utterance(speaker, 0.6 + 0.2 * j, SR,
                                                                         rng=seed + 10 * i + j), SR)
    return root


def test_two_corpora_run_averages_validation_and_stores_cohort_scoring(tmp_path):
    from dlsp.speaker.validation import calibrate_scoring

    voices = make_speakers(8, seed=9)
    roots = [_write_corpus(tmp_path / "alpha", voices[:4]), _write_corpus(tmp_path / "beta", voices[4:], seed=50)]
    config = apply_overrides(SpeakerTrainConfig(), [
        *TINY, "data.val_fraction=0.5", "data.balance=sqrt", "data.crop_seconds=[0.3, 0.6]", "train.epochs=1",
        "score.cohort=true", "score.top_k=3", "score.cohort_per_speaker=2", "score.window_seconds=0.5",
        "score.hop_seconds=0.25"])
    data = load_data(config, roots, progress=False)
    assert {k.split("/")[0] for k in data.splits["val"]} == {"alpha", "beta"}
    run = tmp_path / "run"
    best, result = train_run(config, data, run, progress=False, log=lambda *a: None)
    record = result.history[0]
    assert record["val_eer"] == pytest.approx((record["val_eer_alpha"] + record["val_eer_beta"]) / 2)
    results = json.loads((run / "results.json").read_text())
    loaded = load_speaker_model(run / "best.pt")
    scorer = loaded.scorer
    assert scorer.kind == "asnorm" and scorer.top_k == 3 and scorer.cohort.shape == (2 * 4, 8)  # 4 train speakers
    assert results["score_threshold"] == scorer.threshold and results["cohort_size"] == 8
    assert loaded.threshold == pytest.approx(record["val_threshold"])  # the cosine threshold is kept beside it
    assert (loaded.window_seconds, loaded.hop_seconds) == (0.5, 0.25)
    assert scorer.table.far_at(scorer.threshold) == pytest.approx(results["score_far"])
    again, _ = calibrate_scoring(best, data.train, data.val, config.score, torch.device("cpu"), SR)
    assert again.threshold == pytest.approx(scorer.threshold) and again.score_id == scorer.score_id


def _wideband_validation():
    """A tiny untrained 16 kHz encoder (the calibration is under test, not the voices) and synthetic clips:
    training speakers for the cohort, and validation speakers in two corpora."""
    torch.manual_seed(0)
    encoder = SpeakerEncoder(sample_rate=16000, features="logmel", n_mels=20, n_fft=512, hop_length=256, hidden=8,
                             embedding_dim=4)
    voices = make_speakers(10, seed=21)

    def clips(chosen, names):
        audio = [synth_utterance(v, 0.5, 16000, rng=100 * i + j) for i, v in enumerate(chosen) for j in range(3)]
        return SpeakerClips(audio, np.repeat(np.arange(len(chosen)), 3), names)

    train = clips(voices[:4], [f"t/{v.name}" for v in voices[:4]])
    val = clips(voices[4:], [f"{'alpha' if i < 3 else 'beta'}/{v.name}" for i, v in enumerate(voices[4:])])
    return encoder, train, val


@pytest.mark.parametrize("target_far", [None, 0.2])
def test_calibration_sets_the_narrowband_threshold_on_band_limited_validation_trials(target_far):
    from dlsp.audio.bandwidth import band_limit
    from dlsp.speaker.scoring import balanced_eer, threshold_at_far
    from dlsp.speaker.validation import (
        ScoreSection,
        calibrate_scoring,
        corpus_trials,
        narrowband_threshold,
        scoring_line,
    )

    encoder, train, val = _wideband_validation()
    score = ScoreSection(window_seconds=0, cohort=True, cohort_per_speaker=2, top_k=3, target_far=target_far)
    scorer, summary = calibrate_scoring(encoder, train, val, score, torch.device("cpu"), 16000)
    # By hand: both clips of every trial low-passed at 4 kHz, scored against the same (wideband) cohort.
    limited = embed_clips(encoder, [band_limit(clip, 16000, 4000.0) for clip in val.audio], torch.device("cpu"))
    trials, groups, _ = corpus_trials(val)
    scores = Scorer("asnorm", 0.0, scorer.cohort, 3).trial_scores(limited, trials.first, trials.second)
    rate, threshold = balanced_eer(scores, trials.target, groups)
    if target_far is not None:
        threshold = threshold_at_far(scores, trials.target, target_far, groups)
    narrow = scorer.narrow
    assert narrow.below_hz == 5000.0 and narrow.threshold == pytest.approx(threshold, abs=1e-9)
    assert narrow.threshold != pytest.approx(scorer.threshold, abs=1e-3)  # not the wideband threshold again
    assert summary["narrow_threshold"] == narrow.threshold and summary["narrow_eer"] == pytest.approx(rate)
    assert summary["narrow_far"] == pytest.approx(narrow.table.far_at(narrow.threshold))
    assert summary["narrow_frr"] == pytest.approx(narrow.table.frr_at(narrow.threshold))
    assert "narrowband probes (content below 5 kHz): threshold" in scoring_line(summary)
    # The public function the lead re-calibrates with gives the same rule.
    again = narrowband_threshold(encoder, val, scorer, score, torch.device("cpu"), 16000)
    assert (again.below_hz, again.threshold) == (narrow.below_hz, narrow.threshold)
    np.testing.assert_array_equal(again.table.far, narrow.table.far)


def test_calibration_sets_thresholds_by_enrolment_size_on_speaker_models_of_that_size():
    from dlsp.audio.bandwidth import band_limit
    from dlsp.speaker.evaluate import enrolled_trials
    from dlsp.speaker.scoring import threshold_at_far
    from dlsp.speaker.validation import ScoreSection, calibrate_scoring, clip_corpora, scoring_line

    encoder, train, val = _wideband_validation()  # 3 validation clips per speaker: models of 1 or 2 leave probes
    score = ScoreSection(window_seconds=0, cohort=True, cohort_per_speaker=2, top_k=3, target_far=0.2,
                         enroll_clips=2, enroll_sizes=[3, 1, 2])
    scorer, summary = calibrate_scoring(encoder, train, val, score, torch.device("cpu"), 16000)
    assert scorer.enrolled == 2 and [e.enrolled for e in scorer.by_enrolment] == [1, 2]
    assert summary["enroll_sizes_unmeasured"] == [3]
    same = scorer.for_enrolment(2)  # the size of the one threshold: the same trials, the same threshold
    assert same.threshold == scorer.threshold and same.narrow.threshold == scorer.narrow.threshold
    cpu = torch.device("cpu")
    for entry, clips in ((scorer.by_enrolment[0], val.audio),
                         (scorer.by_enrolment[0].narrow, [band_limit(c, 16000, 4000.0) for c in val.audio])):
        # By hand: speaker models of 1 clip against every other clip of their corpus, AS-norm, 20% false accepts.
        rows, trials, groups, _ = enrolled_trials(embed_clips(encoder, clips, cpu), val.labels, clip_corpora(val), 1)
        scores = Scorer("asnorm", 0.0, scorer.cohort, 3).trial_scores(rows, trials.first, trials.second)
        assert entry.threshold == pytest.approx(threshold_at_far(scores, trials.target, 0.2, groups), abs=1e-9)
    assert scorer.by_enrolment[0].threshold != pytest.approx(scorer.threshold, abs=1e-3)
    assert summary["enrolled1_threshold"] == scorer.by_enrolment[0].threshold and summary["enrolled1_far"] <= 0.2
    line = scoring_line(summary)
    assert "thresholds by enrolment size: 1 clip " in line and ", 2 clips " in line
    assert "no thresholds for speaker models of 3 clips" in line


def test_calibration_can_hold_the_false_accept_rate_in_every_validation_corpus():
    from dlsp.speaker.scoring import corpus_rates, threshold_at_far
    from dlsp.speaker.validation import ScoreSection, calibrate_scoring, corpus_trials

    encoder, train, val = _wideband_validation()
    score = ScoreSection(window_seconds=0, cohort=True, cohort_per_speaker=2, top_k=3, target_far=0.2,
                         far_over_corpora="every")
    scorer, _ = calibrate_scoring(encoder, train, val, score, torch.device("cpu"), 16000)
    trials, groups, _ = corpus_trials(val)
    scores = scorer.trial_scores(embed_clips(encoder, val.audio, torch.device("cpu")), trials.first, trials.second)
    assert scorer.threshold == pytest.approx(threshold_at_far(scores, trials.target, 0.2, groups, every_group=True),
                                             abs=1e-9)
    assert corpus_rates(scores, trials.target, groups, np.array([scorer.threshold]))[0].max() <= 0.2 + 1e-9


def test_models_at_8_khz_get_no_narrowband_threshold():
    from dlsp.speaker.validation import ScoreSection, calibrate_scoring, narrowband_threshold, scoring_line

    voices = make_speakers(4, seed=3)
    val = SpeakerClips([synth_utterance(v, 0.5, SR, rng=j) for v in voices for j in range(2)],
                       np.repeat(np.arange(4), 2), [f"a/{v.name}" for v in voices])
    torch.manual_seed(0)
    encoder = SpeakerEncoder(sample_rate=SR, features="logmel", n_mels=20, n_fft=256, hop_length=128, hidden=8,
                             embedding_dim=4)
    scorer, summary = calibrate_scoring(encoder, val, val, ScoreSection(window_seconds=0), torch.device("cpu"), SR)
    assert scorer.narrow is None and not any(key.startswith("narrow") for key in summary)
    assert "narrowband" not in scoring_line(summary)
    with pytest.raises(DlspError, match="no narrowband threshold"):
        narrowband_threshold(encoder, val, scorer, ScoreSection(), torch.device("cpu"), SR)


SPEAKER_RECIPES = sorted((__import__("pathlib").Path(__file__).resolve().parents[1] / "recipes").glob(
    "speaker_*.yaml"))


@pytest.mark.parametrize("recipe", SPEAKER_RECIPES, ids=lambda p: p.stem)
def test_speaker_recipes_load_and_build_their_model(recipe):
    from dlsp.config import load_config
    from dlsp.speaker.data import check_augmentation
    from dlsp.speaker.train import build_encoder
    from dlsp.speaker.validation import check_score

    config = load_config(SpeakerTrainConfig, recipe)
    check_augmentation(config.data)
    check_score(config.score)
    assert sum(p.numel() for p in build_encoder(config).parameters()) > 0


def test_wideband_recipe_validates_on_both_training_corpora_with_as_norm():
    from dlsp.config import load_config

    config = load_config(SpeakerTrainConfig, SPEAKER_RECIPES[0].parent / "speaker_wideband.yaml")
    assert config.data.val_speakers == ["@speechocean762", "@arabic"] and not config.data.test_speakers
    assert config.data.balance == "corpus" and config.data.crop_seconds == [1.0, 4.0] and config.score.cohort

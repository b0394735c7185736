"""dlsp.release: re-calibrating a speaker model file made before narrowband thresholds existed (publishing and the
ONNX engine check are tested with the default models and the export: test_default_*.py, test_export.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlsp.config import apply_overrides
from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.errors import DlspError
from dlsp.release import recalibrate_speaker
from dlsp.speaker.model_file import load_speaker_model
from dlsp.speaker.train import SpeakerTrainConfig, load_data, train_run

SR = 16000
TINY = ["model.args={features: logmel, n_mels: 20, n_fft: 512, hop_length: 256, hidden: 16, embedding_dim: 8}",
        f"data.sample_rate={SR}", "data.segment_seconds=0.5", "data.segments_per_epoch=32", "data.val_fraction=0.4",
        "train.batch_size=16", "train.device=cpu", "train.patience=null", "train.epochs=1", "score.cohort=true",
        "score.top_k=5"]


def test_an_old_speaker_file_gets_the_narrowband_threshold_training_sets_and_keeps_the_rest(tmp_path):
    corpus = make_synthetic_corpus(tmp_path / "c", seed=7, n_speakers=5, utterances_per_speaker=4,
                                   utterance_seconds=(0.6, 1.0), noise_files_per_kind=1, noise_seconds=0.5,
                                   sample_rate=SR, progress=False)
    config = apply_overrides(SpeakerTrainConfig(), TINY)
    data = load_data(config, [corpus / "speech"], progress=False)
    train_run(config, data, tmp_path / "run", progress=False, log=lambda *a: None)
    path = tmp_path / "run" / "best.pt"
    trained = load_speaker_model(path)
    assert trained.scorer.narrow is not None  # a 16 kHz model: training set it
    # A file from before narrowband thresholds: the same without the rule.
    payload = torch.load(path, weights_only=True)
    del payload["scoring"]["narrow"]
    torch.save(payload, path)
    assert load_speaker_model(path).scorer.narrow is None
    scorer = recalibrate_speaker(path, [str(corpus / "speech")])
    again = load_speaker_model(path)
    # The same thresholds and tables training set (the same trials, the cohort stored in the file).
    narrow = scorer.narrow
    assert narrow.threshold == pytest.approx(trained.scorer.narrow.threshold, abs=1e-6)
    assert again.scorer.narrow.threshold == pytest.approx(narrow.threshold)
    assert again.scorer.narrow.table.far_at(narrow.threshold) == pytest.approx(
        trained.scorer.narrow.table.far_at(narrow.threshold))
    assert again.scorer.threshold == pytest.approx(trained.scorer.threshold, abs=1e-6)
    assert again.model_id == trained.model_id and again.threshold == trained.threshold  # raw cosine threshold kept
    assert (again.scorer.cohort == trained.scorer.cohort).all()
    # At a chosen false-accept rate: both thresholds move there, and the config says so.
    strict = recalibrate_speaker(path, [str(corpus / "speech")], target_far=0.05)
    again = load_speaker_model(path)
    assert again.config["score"]["target_far"] == 0.05 and again.scorer.threshold == strict.threshold
    assert again.scorer.table.far_at(strict.threshold) <= 0.05 + 1e-9
    assert again.scorer.narrow.table.far_at(strict.narrow.threshold) <= 0.05 + 1e-9
    assert strict.threshold >= trained.scorer.threshold  # fewer false accepts than at the EER (over 5% here)
    # On speaker models of 2 clips against one, as verify judges: the config records it, the rate still holds.
    enrolled = recalibrate_speaker(path, [str(corpus / "speech")], enroll_clips=2)
    again = load_speaker_model(path)
    assert again.config["score"]["enroll_clips"] == 2 and again.config["score"]["target_far"] == 0.05
    assert again.scorer.threshold == enrolled.threshold and enrolled.table.far_at(enrolled.threshold) <= 0.05 + 1e-9
    assert not np.array_equal(enrolled.table.far, strict.table.far)  # other trials
    # With thresholds by enrolment size: the size of the one threshold gets the same threshold again.
    sized = recalibrate_speaker(path, [str(corpus / "speech")], enroll_sizes=[1, 2])
    again = load_speaker_model(path)
    assert again.config["score"]["enroll_sizes"] == [1, 2] and [e.enrolled for e in again.scorer.by_enrolment] == [1, 2]
    assert again.scorer.for_enrolment(2).threshold == sized.threshold == pytest.approx(enrolled.threshold)
    assert again.scorer.for_enrolment(1).table.far_at(again.scorer.for_enrolment(1).threshold) <= 0.05 + 1e-9
    assert recalibrate_speaker(path, [str(corpus / "speech")], enroll_sizes=[]).by_enrolment == ()


def test_an_8_khz_speaker_file_takes_no_narrowband_threshold(tmp_path):
    corpus = make_synthetic_corpus(tmp_path / "c", seed=8, n_speakers=5, utterances_per_speaker=4,
                                   utterance_seconds=(0.6, 1.0), noise_files_per_kind=1, noise_seconds=0.5,
                                   sample_rate=8000, progress=False)
    config = apply_overrides(SpeakerTrainConfig(), [*TINY, "data.sample_rate=8000",
                                                    "model.args.n_fft=256", "model.args.hop_length=128"])
    data = load_data(config, [corpus / "speech"], progress=False)
    train_run(config, data, tmp_path / "run", progress=False, log=lambda *a: None)
    trained = load_speaker_model(tmp_path / "run" / "best.pt")
    scorer = recalibrate_speaker(tmp_path / "run" / "best.pt", [str(corpus / "speech")])
    assert scorer.narrow is None and load_speaker_model(tmp_path / "run" / "best.pt").scorer.narrow is None
    assert scorer.threshold == pytest.approx(trained.scorer.threshold, abs=1e-6)


def test_a_bad_false_accept_rate_is_refused_and_the_file_left_alone(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"")  # never read: the rate is checked first
    with pytest.raises(DlspError, match="target_far"):
        recalibrate_speaker(path, [], target_far=1.5)
    assert path.read_bytes() == b""

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


def test_an_ensemble_of_two_seeds_is_one_half_precision_model_file_with_its_own_thresholds(tmp_path, cli):
    from dlsp.models.speaker import SpeakerEnsemble
    from dlsp.release import publish_speaker
    from dlsp.speaker.embed import SpeakerEmbedder

    corpus = make_synthetic_corpus(tmp_path / "c", seed=9, n_speakers=5, utterances_per_speaker=4,
                                   utterance_seconds=(0.6, 1.0), noise_files_per_kind=1, noise_seconds=0.5,
                                   sample_rate=SR, progress=False)
    runs = []
    for seed in (0, 1):
        config = apply_overrides(SpeakerTrainConfig(), [*TINY, f"train.seed={seed}"])
        train_run(config, load_data(config, [corpus / "speech"], progress=False), tmp_path / f"s{seed}",
                  progress=False, log=lambda *a: None)
        runs.append(tmp_path / f"s{seed}" / "best.pt")
    out = tmp_path / "ensemble.pt"
    code, printed, err = cli("speaker", "ensemble", *runs, "--data", corpus / "speech", "--out", out)
    assert code == 0 and printed.startswith(f"wrote {out}") and "2 members" in printed, err
    payload = torch.load(out, weights_only=True)
    assert payload["model"] == "ensemble" and all(v.dtype == torch.float16 for k, v in payload["state_dict"].items()
                                                   if v.is_floating_point())
    assert [m["model_id"] for m in payload["members"]] == [load_speaker_model(r).model_id for r in runs]
    loaded = load_speaker_model(out)
    assert isinstance(loaded.model, SpeakerEnsemble) and loaded.embedding_dim == 16
    assert loaded.scorer.kind == "asnorm" and loaded.scorer.cohort.shape[1] == 16 and loaded.scorer.narrow
    assert loaded.scorer.table.far_at(loaded.scorer.threshold) == pytest.approx(
        payload["scoring"]["table"]["far"][payload["scoring"]["table"]["score"].index(loaded.scorer.threshold)])
    # It embeds as its members do, side by side: the cosine is the mean of theirs (members at half precision).
    files = sorted((corpus / "speech").rglob("*.wav"))[::7][:2]
    pair = SpeakerEmbedder(loaded, "cpu").embed_files(files)
    members = [SpeakerEmbedder(load_speaker_model(r), "cpu").embed_files(files) for r in runs]
    assert float(pair[0] @ pair[1]) == pytest.approx(np.mean([float(a @ b) for a, b in members]), abs=5e-3)
    assert abs(float(members[0][0] @ members[0][1]) - float(members[1][0] @ members[1][1])) > 1e-3  # not alike
    # Publishing keeps it at half precision (its weights, and so its id, unchanged).
    published = publish_speaker(out, tmp_path / "published.pt")
    assert load_speaker_model(published).model_id == loaded.model_id
    assert torch.load(published, weights_only=True)["state_dict"]["members.0.projection.weight"].dtype == \
        torch.float16
    # Refused in one line: a single model, and an ensemble as a member.
    code, _, err = cli("speaker", "ensemble", runs[0], "--data", corpus / "speech", "--out", tmp_path / "x.pt")
    assert code == 2 and "two or more speaker model files" in err and err.count("\n") == 1
    code, _, err = cli("speaker", "ensemble", out, runs[0], "--data", corpus / "speech", "--out", tmp_path / "x.pt")
    assert code == 2 and "not ensembles" in err and not (tmp_path / "x.pt").exists()

"""The default speaker encoder shipped in the package: small plain data, deterministic unit embeddings, CLI use
without --model, and (with ../shared/data) its EER on speakers it never trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlsp.audio.io import save_audio
from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.models.speaker import SpeakerEnsemble
from dlsp.release import MAX_SPEAKER_BYTES
from dlsp.speaker import SpeakerEmbedder, load_speaker_model
from dlsp.speaker.model_file import default_model_path, weights_id


def test_default_model_is_small_plain_data_and_calibrated():
    path = default_model_path()
    assert path.stat().st_size <= MAX_SPEAKER_BYTES
    payload = torch.load(path, map_location="cpu", weights_only=True)  # plain data: no code can run
    assert payload["task"] == "speaker" and "provenance" in payload
    loaded = load_speaker_model(None)
    # Two encoders (two training seeds) side by side, stored at half precision.
    assert loaded.sample_rate == 16000 and isinstance(loaded.model, SpeakerEnsemble)
    assert [m.view_dim for m in loaded.model.members] == [256, 256] and loaded.embedding_dim == 512
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    assert [m["model_id"] for m in payload["members"]] == ["9eaa4b3b67208aed", "57649b7ec752df32"]
    assert -1 < loaded.threshold < 1
    # Telephone-band probes get their own, higher threshold (their impostors score higher).
    assert loaded.scorer.narrow is not None and loaded.scorer.narrow.threshold > loaded.scorer.threshold
    # People enrolled with 4 or more recordings get the stricter thresholds set on speaker models of 5.
    assert loaded.scorer.enrolled == 3 and [e.enrolled for e in loaded.scorer.by_enrolment] == [3, 5]
    assert loaded.scorer.for_enrolment(1).threshold == loaded.scorer.threshold
    many = loaded.scorer.for_enrolment(9)
    assert many.threshold > loaded.scorer.threshold and many.narrow.threshold > loaded.scorer.narrow.threshold
    assert loaded.model_id == weights_id(loaded.model)


def test_default_embeddings_are_unit_norm_deterministic_and_rate_independent():
    speaker = make_speakers(4, seed=21)[1]
    audio = synth_utterance(speaker, 1.5, 16000, rng=3)
    embedder = SpeakerEmbedder.from_file(None, device="cpu")
    first, second = embedder.embed_audio(audio, 16000), embedder.embed_audio(audio, 16000)
    assert first.shape == (embedder.embedding_dim,) and np.array_equal(first, second)
    assert abs(np.linalg.norm(first) - 1) < 1e-5
    import soxr

    at_44k = embedder.embed_audio(np.stack([soxr.resample(audio, 16000, 44100)] * 2), 44100)  # stereo 44.1 kHz
    assert float(first @ at_44k) > 0.98


def test_cli_enroll_and_verify_with_the_default_model(tmp_path, cli):
    speakers = make_speakers(6, seed=2)
    low, high = speakers[0], speakers[5]
    files = {}
    for speaker in (low, high):
        for take in range(4):
            files[speaker.name, take] = save_audio(tmp_path / f"{speaker.name}_{take}.wav",
                                                   synth_utterance(speaker, 1.5, 16000, rng=50 + take), 16000)
    db = tmp_path / "s.db"
    for speaker in (low, high):
        code, out, err = cli("speaker", "enroll", speaker.name, *(files[speaker.name, t] for t in range(3)),
                             "--db", db)
        assert code == 0, err
        assert f"verify judges {speaker.name} at the model's threshold for speaker models of 3 recordings " \
               "(validation: " in out and "expect more" not in out
    code, out, _ = cli("speaker", "verify", low.name, files[low.name, 3], "--db", db)
    assert code == 0 and "ACCEPT" in out
    code, out, _ = cli("speaker", "verify", low.name, files[high.name, 3], "--db", db)
    assert code == 1 and "REJECT" in out
    assert "measured on people" not in out  # enrolled with 3, as the model's thresholds were set
    # Someone enrolled with another number of recordings than the validation models: the rate is said to be
    # measured on models of 3.
    code, out, err = cli("speaker", "enroll", "one", files[low.name, 0], "--db", db)
    assert code == 0, err
    assert "with 1 recording expect more false rejects: enroll 2 more" in out
    code, out, _ = cli("speaker", "verify", "one", files[low.name, 3], "--db", db, "--json", tmp_path / "v.json")
    assert "expected false-accept rate at the threshold" in out
    assert "measured on people enrolled with 3 recordings; one has 1)" in out
    result = json.loads((tmp_path / "v.json").read_text())
    assert (result["table_enrolled_files"], result["enrolled_files"]) == (3, 1)


@pytest.mark.shared_data
def test_default_model_beats_chance_clearly_on_unseen_arabic_speakers(shared_data):
    from dlsp.speaker.data import index_speakers
    from dlsp.speaker.evaluate import embed_items, evaluate_embeddings, select_items

    chosen = select_items(index_speakers([shared_data / "speech" / "arabic_commands"]), "val",
                          max_per_speaker=30)
    embedded = embed_items(SpeakerEmbedder.from_file(None, device="cpu"), chosen, progress=False)
    summary, _, _ = evaluate_embeddings(embedded.embeddings, embedded.speakers, n_boot=0)
    assert summary["eer"] < 0.13  # the benchmark measures it on all 480 clips (about 9%); the baseline gets 25%

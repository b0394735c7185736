"""dlsp.speaker.embed: long recordings are embedded as the normalised mean of their windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.models.speaker import SpeakerEncoder
from dlsp.speaker.embed import SpeakerEmbedder, embed_windows, window_spans
from dlsp.speaker.model_file import load_speaker_model, save_speaker_model

SR = 8000


def test_window_spans_cover_the_recording_and_end_at_its_end():
    assert window_spans(100, 0, 0) == [(0, 100)]
    assert window_spans(100, 100, 50) == [(0, 100)]  # fits one window: whole
    assert window_spans(250, 100, 50) == [(0, 100), (50, 150), (100, 200), (150, 250)]
    assert window_spans(260, 100, 50) == [(0, 100), (50, 150), (100, 200), (150, 250), (160, 260)]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    torch.manual_seed(0)
    encoder = SpeakerEncoder(sample_rate=SR, features="logmel", n_mels=20, n_fft=256, hop_length=128, hidden=16,
                             embedding_dim=8)
    path = save_speaker_model(tmp_path_factory.mktemp("m") / "m.pt", encoder, "gru", sample_rate=SR,
                              threshold=0.5, trim_db=40.0, window_seconds=0.5, hop_seconds=0.25)
    return SpeakerEmbedder(load_speaker_model(path), "cpu")


def test_a_long_recording_is_the_normalised_mean_of_its_windows_one_by_one(embedder):
    clip = synth_utterance(make_speakers(3, seed=2)[1], 1.3, SR, rng=5)  # 10400 samples, windows of 4000
    spans = window_spans(clip.size, 4000, 2000)
    assert spans[-1] == (6400, 10400) and len(spans) == 5
    with torch.no_grad():
        windows = np.stack([embedder.model(torch.from_numpy(clip[a:b])[None])[0].numpy() for a, b in spans])
    mean = windows.mean(axis=0)
    expected = mean / np.linalg.norm(mean)
    got = embedder.embed_prepared([clip])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-6)
    # Beside other clips (batched with their windows) it is the same embedding.
    short = clip[:3000]
    both = embedder.embed_prepared([short, clip, clip[:9000]])
    np.testing.assert_allclose(both[1], expected, atol=1e-5)
    with torch.no_grad():  # a clip that fits one window is embedded whole
        whole = embedder.model(torch.from_numpy(short)[None])[0].numpy()
    np.testing.assert_allclose(both[0], whole, atol=1e-5)


def test_embed_windows_without_windows_embeds_whole_clips(embedder):
    clip = synth_utterance(make_speakers(3, seed=2)[0], 1.3, SR, rng=6)
    got = embed_windows(embedder.model, [clip], torch.device("cpu"))
    with torch.no_grad():
        whole = embedder.model(torch.from_numpy(clip)[None])[0].numpy()
    np.testing.assert_allclose(got[0], whole, atol=1e-5)


def test_a_probes_bandwidth_is_measured_on_what_is_embedded_and_picks_the_threshold(tmp_path, write_wav):
    import soxr

    from dlsp.audio.bandwidth import band_limit
    from dlsp.speaker.scoring import NarrowbandThreshold, Scorer

    torch.manual_seed(0)
    wide_sr = 16000
    encoder = SpeakerEncoder(sample_rate=wide_sr, features="logmel", n_mels=20, n_fft=512, hop_length=256, hidden=8,
                             embedding_dim=4)
    scorer = Scorer("cosine", 0.2, narrow=NarrowbandThreshold(5000.0, 0.7))
    path = save_speaker_model(tmp_path / "m16.pt", encoder, "gru", sample_rate=wide_sr, threshold=0.2, trim_db=40.0,
                              scorer=scorer)
    embedder = SpeakerEmbedder(load_speaker_model(path), "cpu")
    voice = synth_utterance(make_speakers(2, seed=4)[1], 1.2, wide_sr, rng=9)
    files = {"full": write_wav("full.wav", voice, wide_sr),
             "phone": write_wav("phone.wav", band_limit(voice, wide_sr, 3400.0), wide_sr),  # 3.4 kHz telephone band
             "8k": write_wav("eight.wav", soxr.resample(voice, wide_sr, 8000), 8000)}  # resampled up on loading
    measured = {name: embedder.load_probe(f) for name, f in files.items()}
    bandwidth = {name: hz for name, (_, hz) in measured.items()}
    assert bandwidth["full"] > 7000 and 3200 <= bandwidth["phone"] <= 3500 and 3500 <= bandwidth["8k"] <= 4100
    loaded = embedder.loaded.scorer
    assert loaded.threshold_for(bandwidth["phone"]) == 0.7 and loaded.threshold_for(bandwidth["8k"]) == 0.7
    assert loaded.threshold_for(bandwidth["full"]) == 0.2
    # The probe is the clip `embed_files` embeds: same audio, bit-for-bit the same embedding.
    for name, (clip, _) in measured.items():
        np.testing.assert_array_equal(clip, embedder.load(files[name]))
        np.testing.assert_array_equal(embedder.embed_prepared([clip])[0], embedder.embed_files([files[name]])[0])
        embedding, hz = embedder.embed_probe(files[name])
        np.testing.assert_array_equal(embedding, embedder.embed_files([files[name]])[0])
        assert hz == bandwidth[name]

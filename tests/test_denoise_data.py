"""dlsp.denoise.data: on-the-fly mixing and pair sources, determinism per (seed, epoch, index), the cache."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.audio.io import save_audio
from dlsp.data.noisy_corpus import make_noisy_corpus
from dlsp.data.synthetic_corpus import make_synthetic_corpus
from dlsp.denoise.data import DenoiseDataConfig, batches, mixing_data, pair_data
from dlsp.errors import DlspError
from dlsp.metrics.enhancement import snr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return make_synthetic_corpus(root / "c", seed=3, n_speakers=5, utterances_per_speaker=3,
                                 noise_files_per_kind=3, noise_seconds=3.0, progress=False)


def test_mixing_source_segments_have_the_drawn_snr_and_are_reproducible(corpus):
    config = DenoiseDataConfig(segment_seconds=1.0, snr="5", level_db=None)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False)
    source = data.sources["train"]
    noisy, clean = source.segment(0, 0, 7)
    assert noisy.shape == clean.shape == (16000,) and noisy.dtype == np.float32
    assert snr(clean, noisy) == pytest.approx(5.0, abs=0.01)  # SNR of clean vs (noisy - clean) = the noise
    again = source.segment(0, 0, 7)
    np.testing.assert_array_equal(again[0], noisy)
    assert not np.array_equal(source.segment(0, 1, 7)[0], noisy)  # a new epoch, new data


def test_splits_keep_speakers_and_noise_recordings_apart(corpus):
    data = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(), seed=0, progress=False)
    speakers = {s: {p.split("/")[-2] for p in data.files[s]["clean"]} for s in data.files}
    noises = {s: set(data.files[s]["noise"]) for s in data.files}
    assert set(data.files) == {"train", "val", "test"}
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"]
    assert not noises["train"] & noises["test"] and not noises["val"] & noises["test"]


def test_batches_shape_and_count(corpus):
    config = DenoiseDataConfig(segment_seconds=0.5)
    source = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False).sources["val"]
    got = list(batches(source, 0, 0, 10, 4))
    assert [b[0].shape for b in got] == [(4, 8000), (4, 8000), (2, 8000)]


def test_pair_source_uses_the_manifest_splits(corpus, tmp_path):
    mixes = make_noisy_corpus(corpus / "speech", corpus / "noise", tmp_path / "mix", count=12, seed=0,
                              progress=False).parent
    data = pair_data(mixes, DenoiseDataConfig(segment_seconds=0.5), seed=0, progress=False)
    assert set(data.sources) == {"train", "val", "test"}
    noisy, clean = data.sources["train"].segment(0, 0, 0)
    assert noisy.shape == clean.shape == (8000,)


def test_cache_is_reused_and_invalidated(corpus, tmp_path):
    cache = tmp_path / "PREPROCESSED"
    config = DenoiseDataConfig(segment_seconds=0.5)
    first = mixing_data([corpus / "speech"], [corpus / "noise"], config, 0, cache=cache, progress=False)
    assert (cache / "train" / "clean.npy").exists() and (cache / "validation" / "noise.npy").exists()
    second = mixing_data([corpus / "speech"], [corpus / "noise"], config, 0, cache=cache, progress=False)
    np.testing.assert_array_equal(first.sources["train"].segment(0, 0, 1)[0],
                                  second.sources["train"].segment(0, 0, 1)[0])
    # Changing an input file changes the key: the stale cache is not used.
    target = corpus / "speech" / "spk00" / "spk00_000.wav"
    original = target.read_bytes()
    try:
        save_audio(target, np.full(8000, 0.1, np.float32), 16000)
        key_before = (cache / "train" / "clean.json").read_text()
        mixing_data([corpus / "speech"], [corpus / "noise"], config, 0, cache=cache, progress=False)
        assert (cache / "train" / "clean.json").read_text() != key_before or "spk00" not in key_before
    finally:
        target.write_bytes(original)


def test_missing_noise_is_a_clear_error(corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DlspError, match="no audio files"):
        mixing_data([corpus / "speech"], [tmp_path / "empty"], DenoiseDataConfig(), 0, progress=False)


def test_noise_augmentation_only_in_training(corpus):
    data = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(), seed=0, progress=False)
    assert data.sources["train"].augment_noise and not data.sources["val"].augment_noise
    plain = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(augment_noise=False), seed=0,
                        progress=False)
    assert not plain.sources["train"].augment_noise
    noisy, clean = data.sources["train"].segment(0, 0, 3)
    assert np.all(np.isfinite(noisy)) and not np.array_equal(noisy, clean)


def test_synthetic_noise_joins_the_training_pool_only(corpus):
    config = DenoiseDataConfig(synthetic_noise_files=2)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False)
    train_names = data.sources["train"].noise.names
    assert sum(name.startswith("synthetic:") for name in train_names) == 2 * 7
    assert not any(name.startswith("synthetic:") for name in data.sources["val"].noise.names)


def test_speed_perturbation_moves_the_pitch_within_its_range_in_training_only(corpus):
    from dlsp.audio.mixing import parse_snr_spec
    from dlsp.denoise.data import AudioPool, MixingSource

    sr = 8000
    tone = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr).astype(np.float32)  # a 1 kHz "utterance"
    noise = AudioPool(["n"], [np.random.default_rng(0).standard_normal(2 * sr).astype(np.float32)])
    source = MixingSource(AudioPool(["tone"], [tone]), noise, parse_snr_spec("100"), None, sr // 2, sr,
                          speech_speed=0.2)
    peaks = []
    for index in range(40):
        _, clean = source.segment(0, 0, index)
        spectrum = np.abs(np.fft.rfft(clean * np.hanning(clean.size)))
        peaks.append(np.argmax(spectrum) * sr / clean.size)
    peaks = np.array(peaks)
    assert np.all((peaks > 790) & (peaks < 1210))  # within 1 -/+ 0.2 of 1 kHz (plus a bin)
    assert np.mean(np.abs(peaks - 1000) > 20) > 0.4  # most segments are perturbed, not all
    assert np.mean(np.abs(peaks - 1000) <= 4) > 0.1
    with pytest.raises(DlspError, match="speech_speed"):
        MixingSource(AudioPool(["tone"], [tone]), noise, parse_snr_spec("0"), None, sr, sr, speech_speed=0.7)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(speech_speed=0.1), seed=0,
                       progress=False)
    assert data.sources["train"].speech_speed == 0.1 and data.sources["val"].speech_speed == 0.0


def test_noise_speed_and_eq_augment_training_noise_and_speech_only_within_their_ranges(corpus):
    from dlsp.audio.mixing import parse_snr_spec
    from dlsp.denoise.data import AudioPool, MixingSource

    sr = 8000
    speech = AudioPool(["s"], [np.random.default_rng(1).standard_normal(sr).astype(np.float32)])
    hum = AudioPool(["hum"], [np.sin(2 * np.pi * 1000 * np.arange(3 * sr) / sr).astype(np.float32)])
    plain = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True)
    fast = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True, noise_speed=0.2)
    peaks = []
    for index in range(40):
        noisy, clean = fast.segment(0, 0, index)
        assert noisy.shape == (sr // 2,)
        peaks.append(np.argmax(np.abs(np.fft.rfft((noisy - clean) * np.hanning(sr // 2)))) * 2)
    peaks = np.array(peaks)
    assert np.all((peaks > 790) & (peaks < 1210))
    assert 0.2 < np.mean(np.abs(peaks - 1000) > 20) < 0.8  # about half the crops are sped up or slowed down
    # Off by default: the segments are exactly those of a source without the options.
    np.testing.assert_array_equal(plain.segment(0, 0, 3)[0],
                                  MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr,
                                               augment_noise=True, noise_speed=0.0, noise_eq=0.0).segment(0, 0, 3)[0])
    coloured = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True, noise_eq=9.0)
    assert any(not np.array_equal(coloured.segment(0, 0, i)[0], plain.segment(0, 0, i)[0]) for i in range(8))
    voiced = MixingSource(speech, hum, parse_snr_spec("0"), None, sr // 2, sr, augment_noise=True, speech_eq=9.0)
    coloured_speech = [not np.array_equal(voiced.segment(0, 0, i)[1], plain.segment(0, 0, i)[1]) for i in range(12)]
    assert 0 < sum(coloured_speech) < 12  # about half the segments; the clean target is the coloured speech
    for bad in (dict(noise_speed=0.5), dict(noise_eq=-1.0), dict(noise_eq=30.0), dict(speech_eq=25.0)):
        with pytest.raises(DlspError, match=next(iter(bad))):
            MixingSource(speech, hum, parse_snr_spec("0"), None, sr, sr, **bad)
    config = DenoiseDataConfig(noise_speed=0.2, noise_eq=9.0, speech_eq=6.0, segment_seconds=1.0)
    data = mixing_data([corpus / "speech"], [corpus / "noise"], config, seed=0, progress=False)
    val = data.sources["val"]
    assert not val.augment_noise and val.speech_eq == val.noise_eq == val.noise_speed == 0.0  # heard as recorded
    assert data.sources["train"].speech_eq == 6.0
    no_aug = mixing_data([corpus / "speech"], [corpus / "noise"], DenoiseDataConfig(segment_seconds=1.0), seed=0,
                         progress=False)
    np.testing.assert_array_equal(val.segment(0, 0, 2)[0], no_aug.sources["val"].segment(0, 0, 2)[0])

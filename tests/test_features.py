"""Features against librosa (float64 references), batching, decibels and clip segmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlsp.audio.features import (
    amplitude_to_db,
    dct_matrix,
    log_magnitude,
    log_mel,
    magnitude_to_db,
    mel_filterbank,
    mel_spectrogram,
    mfcc,
    mfcc_segments,
    power_to_db,
    segment_clip,
    segment_frames,
)
from dlsp.errors import DlspError

librosa = pytest.importorskip("librosa")

# Stated in mfcc's docstring: max |dlsp - librosa| / max |librosa| on a float64 librosa reference.
MFCC_TOLERANCE_FLOAT64 = 1e-7
MFCC_TOLERANCE_FLOAT32 = 1e-5


def _test_signals(sr: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    t = np.arange(n) / sr
    return {
        "noise": 0.1 * rng.standard_normal(n),
        "tones": 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t),
        "chirp": 0.5 * np.sin(2 * np.pi * (100 * t + (sr / 4 - 100) / (2 * t[-1]) * t**2)),
        "quiet": 1e-4 * rng.standard_normal(n),
    }


@pytest.mark.parametrize("sr", [16000, 22050])
def test_mfcc_matches_librosa(sr):
    for name, y in _test_signals(sr, sr + 321).items():
        expected = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=2048, hop_length=512)
        scale = np.abs(expected).max()
        got64 = mfcc(y, sr).numpy()
        got32 = mfcc(y.astype(np.float32), sr).numpy()
        assert got64.shape == got32.shape == expected.shape == (13, 1 + (sr + 321) // 512)
        assert np.abs(got64 - expected).max() / scale < MFCC_TOLERANCE_FLOAT64, name
        assert np.abs(got32 - expected).max() / scale < MFCC_TOLERANCE_FLOAT32, name


def test_mfcc_other_settings_match_librosa():
    y = _test_signals(16000, 8000)["chirp"]
    expected = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=20, n_fft=512, hop_length=160, n_mels=40, fmin=50,
                                    fmax=7000)
    got = mfcc(y, 16000, n_mfcc=20, n_fft=512, hop_length=160, n_mels=40, fmin=50, fmax=7000).numpy()
    assert np.abs(got - expected).max() / np.abs(expected).max() < MFCC_TOLERANCE_FLOAT64


def test_mfcc_batched_equals_per_item():
    # Items 60 dB apart: a batch-wide top_db would clip the quiet one; per item it must not.
    signals = _test_signals(16000, 6000)
    batch = np.stack([[signals["noise"], signals["quiet"]], [signals["tones"], signals["chirp"]]])
    got = mfcc(torch.from_numpy(batch.astype(np.float32)), 16000)
    assert got.shape == (2, 2, 13, 12)
    for b in range(2):
        for c in range(2):
            item = mfcc(batch[b, c].astype(np.float32), 16000)
            assert float((got[b, c] - item).abs().max()) < 1e-3
            expected = librosa.feature.mfcc(y=batch[b, c], sr=16000, n_mfcc=13)
            error = np.abs(got[b, c].numpy() - expected).max() / np.abs(expected).max()
            assert error < MFCC_TOLERANCE_FLOAT32


def test_log_mel_matches_librosa():
    y = _test_signals(16000, 16000)["tones"]
    got = log_mel(y, 16000)  # n_fft 1024, hop 512, 64 mels
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=512, n_mels=64)
    assert got.shape == (64, 32)
    np.testing.assert_allclose(got.numpy(), librosa.power_to_db(mel), rtol=0, atol=1e-5)
    power = mel_spectrogram(y, 16000, 1024, 512, 64).numpy()
    np.testing.assert_allclose(power, mel, rtol=1e-6, atol=1e-12 * mel.max())


def test_log_mel_batched_shape():
    x = torch.zeros(4, 3, 8000)
    x[..., ::100] = 1.0
    assert log_mel(x, 8000, n_fft=256, hop_length=80, n_mels=40).shape == (4, 3, 40, 101)


def test_mel_filterbank():
    bank = mel_filterbank(22050, 2048, 128)
    assert bank.shape == (128, 1025)
    assert bank.dtype == torch.float32
    np.testing.assert_allclose(bank.numpy(), librosa.filters.mel(sr=22050, n_fft=2048), rtol=1e-6, atol=1e-9)
    bank[:] = 0  # callers get a copy; the cache stays intact
    assert float(mel_filterbank(22050, 2048, 128).sum()) > 0
    with pytest.raises(DlspError, match="fmax=9000"):
        mel_filterbank(16000, 512, 40, fmax=9000)
    with pytest.raises(DlspError, match="n_mels=0"):
        mel_filterbank(16000, 512, 0)


def test_power_to_db_matches_librosa(rng):
    power = rng.random((7, 9)) ** 6
    for top_db in (80.0, 20.0, None):
        expected = librosa.power_to_db(power, ref=0.5, amin=1e-10, top_db=top_db)
        np.testing.assert_allclose(power_to_db(power, ref=0.5, top_db=top_db).numpy(), expected, atol=1e-10)
    assert torch.equal(amplitude_to_db(power), power_to_db(power))  # the contract name, power semantics
    magnitude = np.sqrt(power)
    expected = librosa.amplitude_to_db(magnitude)
    np.testing.assert_allclose(magnitude_to_db(magnitude).numpy(), expected, atol=1e-10)
    with pytest.raises(DlspError, match="amin"):
        power_to_db(power, amin=0)


def test_power_to_db_top_db_per_item():
    loud = torch.full((3, 4), 1.0)
    loud[0, 0] = 1e-12
    quiet = torch.full((3, 4), 1e-6)
    quiet[0, 0] = 1e-10
    db = power_to_db(torch.stack([loud, quiet]), top_db=80.0)
    assert float(db[0].min()) == pytest.approx(-80.0)  # clipped 80 dB below its own peak (0 dB)
    assert float(db[1].min()) == pytest.approx(-100.0)  # 40 dB under its own peak; a batch floor clips it
    assert float(power_to_db(torch.tensor([[1.0, 1e-12]]), top_db=20.0).min()) == pytest.approx(-20.0)


def test_log_magnitude():
    magnitude = torch.tensor([0.0, 1.0, math.e])
    expected = torch.log(torch.tensor([1e-8, 1 + 1e-8, math.e + 1e-8]))
    assert torch.allclose(log_magnitude(magnitude), expected)
    assert float(log_magnitude(torch.zeros(1), eps=1e-3)) == pytest.approx(math.log(1e-3))


def test_dct_matrix_is_scipy_ortho_dct():
    import scipy.fft

    x = np.random.default_rng(0).standard_normal((40, 6))
    basis = dct_matrix(13, 40, dtype=torch.float64)
    np.testing.assert_allclose((basis @ torch.from_numpy(x)).numpy(),
                               scipy.fft.dct(x, axis=0, norm="ortho")[:13], atol=1e-12)
    with pytest.raises(DlspError, match="n_mfcc"):
        mfcc(np.ones(4096), 16000, n_mfcc=50, n_mels=40)


def test_segment_clip():
    x = torch.arange(23.0)
    segments = segment_clip(x, 4)  # 5 samples each, the last 3 samples dropped
    assert segments.shape == (4, 5)
    assert torch.equal(segments.reshape(-1), x[:20])
    padded = segment_clip(x, 2, segment_samples=15)
    assert padded.shape == (2, 15)
    assert torch.equal(padded[0], x[:15])
    assert torch.equal(padded[1, :8], x[15:])
    assert torch.all(padded[1, 8:] == 0)
    assert segment_clip(np.ones((3, 2, 100)), 5).shape == (3, 2, 5, 20)
    with pytest.raises(DlspError, match="n_segments must be at least 1, got 0"):
        segment_clip(x, 0)
    with pytest.raises(DlspError, match="too short for 30 segments"):
        segment_clip(x, 30)


def test_mfcc_segments_gtzan_arithmetic(rng):
    sr = 22050
    clip = (0.1 * rng.standard_normal(30 * sr)).astype(np.float32)
    whole = mfcc_segments(clip, sr)  # 5 x 6 s: 132300 samples -> 1 + 132300 // 512 = 259 frames
    assert whole.shape == (5, 13, 259)
    assert segment_frames(132300) == 259 == math.ceil(132300 / 512)
    short = mfcc_segments(clip, sr, segment_seconds=3)  # 5 x 3 s: 66150 samples -> 130 frames, as the study
    assert short.shape == (5, 13, 130)
    assert mfcc_segments(clip, sr, n_segments=10).shape == (10, 13, 130)
    assert float((short[3] - mfcc(clip[3 * 66150:4 * 66150], sr)).abs().max()) < 1e-3
    assert float((whole[1] - mfcc(clip[132300:264600], sr)).abs().max()) < 1e-3


def test_mfcc_segments_pads_short_keyword(sine):
    keyword = sine(freq=700.0, seconds=1.0, sr=16000)
    features = mfcc_segments(keyword, 16000, n_segments=1, segment_seconds=3)
    assert features.shape == (1, 13, 1 + 48000 // 512)
    padded = np.concatenate([keyword, np.zeros(32000, dtype=np.float32)])
    assert float((features[0] - mfcc(padded, 16000)).abs().max()) < 1e-3
    # The keyword sits at the start; after it (frame 40 starts past sample 16000 + n_fft) only silence.
    assert float((features[0, :, :25] - mfcc(keyword, 16000)[:, :25]).abs().max()) < 1e-3
    tail = features[0, :, 40:]
    assert torch.allclose(tail, tail[:, :1].expand_as(tail))
    with pytest.raises(DlspError, match="not both"):
        mfcc_segments(keyword, 16000, segment_samples=100, segment_seconds=1.0)
    with pytest.raises(DlspError, match="segment_seconds must be positive"):
        mfcc_segments(keyword, 16000, segment_seconds=0)

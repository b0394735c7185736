"""dlsp.audio.augment: speed changes scale every frequency; equaliser bands have the gains they are built with."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dlsp.audio.augment import change_speed, peaking_biquad, random_eq


def _peak_hz(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.argmax(spectrum) * sr / audio.size)


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.25])
def test_change_speed_scales_a_tones_frequency_and_its_length(factor):
    sr = 16000
    tone = np.sin(2 * np.pi * 1000 * np.arange(2 * sr) / sr).astype(np.float32)
    fast = change_speed(tone, factor, sr)
    assert fast.dtype == np.float32
    assert abs(fast.size - tone.size / factor) <= 1
    assert _peak_hz(fast, sr) == pytest.approx(1000 * factor, abs=2.0)
    with pytest.raises(ValueError, match="speed"):
        change_speed(tone, 0.0, sr)


def test_peaking_band_has_its_gain_at_the_centre_and_none_far_away():
    sr = 16000
    b, a = peaking_biquad(1000.0, 6.0, 1.0, sr)
    _, response = signal.freqz(b, a, worN=[0.0, 1000.0, 7999.0], fs=sr)
    gains = 20 * np.log10(np.abs(response))
    assert gains[1] == pytest.approx(6.0, abs=1e-6)
    assert abs(gains[0]) < 0.01 and abs(gains[2]) < 0.05
    assert np.all(np.abs(np.roots(a)) < 1)  # stable
    cut_b, cut_a = peaking_biquad(1000.0, -6.0, 1.0, sr)
    _, cut = signal.freqz(cut_b, cut_a, worN=[1000.0], fs=sr)
    assert 20 * np.log10(np.abs(cut[0])) == pytest.approx(-6.0, abs=1e-6)


def test_random_eq_stays_within_its_gain_bounds_and_is_reproducible():
    sr = 16000
    noise = np.random.default_rng(0).standard_normal(4 * sr).astype(np.float32)
    impulse = np.zeros(4096, np.float32)
    impulse[0] = 1.0
    for seed in range(20):
        response = np.abs(np.fft.rfft(random_eq(impulse, np.random.default_rng(seed), sr, 6.0)))
        gains = 20 * np.log10(response)
        assert gains.max() <= 3 * 6.0 + 1e-3 and gains.min() >= -3 * 6.0 - 1e-3  # 3 bands of at most 6 dB
        assert gains.max() - gains.min() > 0.5  # it does colour
    out = random_eq(noise, np.random.default_rng(5), sr, 9.0)
    assert out.shape == noise.shape and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, random_eq(noise, np.random.default_rng(5), sr, 9.0))
    np.testing.assert_allclose(random_eq(noise, np.random.default_rng(5), sr, 0.0), noise, atol=1e-5)

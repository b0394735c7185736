"""Synthetic noises: length, level, determinism, spectral slopes, mains harmonics, impulsiveness."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal, stats

from dlsp.audio.noises import NOISE_KINDS, synth_noise
from dlsp.errors import DlspError

SR = 16000


def _slope_db_per_octave(noise: np.ndarray, band: tuple[float, float] = (100.0, 4000.0)) -> float:
    freqs, power = signal.welch(noise, SR, nperseg=4096)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    return float(np.polyfit(np.log2(freqs[inside]), 10 * np.log10(power[inside]), 1)[0])


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_length_level_and_determinism(kind):
    noise = synth_noise(kind, 1.5, SR, rng=5)
    assert noise.shape == (24000,) and noise.dtype == np.float32 and np.all(np.isfinite(noise))
    assert np.max(np.abs(noise)) <= 10 ** (-1 / 20) + 1e-6
    rms_db = 10 * np.log10(np.mean(noise.astype(float) ** 2))
    if kind == "clicks":  # impulsive: the peak limit binds before the RMS target
        assert rms_db < -26.5
    else:
        assert -26.5 <= rms_db <= -19.5
    assert abs(float(np.mean(noise))) < 1e-3
    np.testing.assert_array_equal(noise, synth_noise(kind, 1.5, SR, rng=5))
    assert not np.allclose(noise, synth_noise(kind, 1.5, SR, rng=6))


def test_unknown_noise_kind_is_a_user_error():
    with pytest.raises(DlspError, match="unknown noise kind 'purple'"):
        synth_noise("purple", 1.0)


@pytest.mark.parametrize(("kind", "expected"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_coloured_noise_spectral_slopes(kind, expected):
    slopes = [_slope_db_per_octave(synth_noise(kind, 4.0, SR, rng=seed)) for seed in range(3)]
    assert np.allclose(slopes, expected, atol=0.5), slopes


def test_hum_energy_sits_on_mains_harmonics():
    mains_seen = set()
    for seed in range(4):
        hum = synth_noise("hum", 4.0, SR, rng=seed).astype(float)
        power = np.abs(np.fft.rfft(hum)) ** 2
        freqs = np.fft.rfftfreq(len(hum), 1 / SR)
        fractions = {}
        for mains in (50, 60):
            harmonic = np.round(freqs / mains)
            near = (harmonic >= 1) & (np.abs(freqs - harmonic * mains) <= 2 + 0.01 * freqs)
            fractions[mains] = power[near].sum() / power.sum()
        mains = max(fractions, key=fractions.get)
        assert fractions[mains] >= 0.9 and fractions[110 - mains] < 0.2, fractions
        mains_seen.add(mains)
    assert mains_seen == {50, 60}  # both grids occur


def test_clicks_are_impulsive_and_the_others_are_not():
    assert stats.kurtosis(synth_noise("clicks", 2.0, SR, rng=1), fisher=False) > 30
    for kind in ("white", "pink", "hum", "machine"):
        assert stats.kurtosis(synth_noise(kind, 2.0, SR, rng=1), fisher=False) < 6, kind


def test_noise_at_8_khz():
    for kind in NOISE_KINDS:
        noise = synth_noise(kind, 0.5, 8000, rng=2)
        assert noise.shape == (4000,) and np.all(np.isfinite(noise)) and np.max(np.abs(noise)) > 0

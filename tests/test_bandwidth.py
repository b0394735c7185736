"""dlsp.audio.bandwidth: where a recording's content stops, and band-limiting to it."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from dlsp.audio.bandwidth import band_limit, effective_bandwidth, is_narrowband

SR = 16000


def _noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * SR)).astype(np.float32) * 0.1


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


def test_white_noise_is_full_band_and_an_upsampled_8k_recording_stops_at_4k():
    assert effective_bandwidth(_noise(), SR) == SR / 2
    upsampled = soxr.resample(soxr.resample(_noise(), SR, 8000), 8000, SR)
    assert 3700 <= effective_bandwidth(upsampled, SR) <= 4100
    assert is_narrowband(upsampled, SR) and not is_narrowband(_noise(), SR)


def test_a_quiet_but_present_upper_band_still_counts():
    # Speech-like tilt: the upper band 60 dB down is real content, not a missing band.
    x = _noise()
    quiet_top = band_limit(x, SR, 4000) + 1e-3 * (x - band_limit(x, SR, 4000))
    assert effective_bandwidth(quiet_top, SR) == SR / 2


def test_silence_has_no_bandwidth():
    assert effective_bandwidth(np.zeros(SR, np.float32), SR) == 0.0


def test_band_limit_removes_the_band_above_the_cutoff_and_keeps_the_rest():
    x = _noise()
    y = band_limit(x, SR, 4000)
    assert y.shape == x.shape and y.dtype == np.float32
    assert _band_energy(y, 4000, 8000) < 1e-9 * _band_energy(x, 4000, 8000)
    assert _band_energy(y, 0, 3700) == pytest.approx(_band_energy(x, 0, 3700), rel=1e-4)
    np.testing.assert_array_equal(band_limit(x, SR, 8000), x)  # at Nyquist: nothing to do

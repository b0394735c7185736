"""Known answers for the do-no-harm checks of dlsp.denoise.transparency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlsp.denoise.transparency import band_level_changes, transparency_checks, transparency_report
from dlsp.errors import DlspError

SR = 16000


def _signals(count: int = 3, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.05 * rng.standard_normal(int(seconds * SR))).astype(np.float32) for _ in range(count)]


def _halve_above_4k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    spectrum = np.fft.rfft(audio.astype(np.float64))
    spectrum[np.fft.rfftfreq(audio.size, 1.0 / sample_rate) >= 4000] *= 0.5
    return np.fft.irfft(spectrum, n=audio.size).astype(np.float32)


def test_identity_changes_nothing():
    report = transparency_report(lambda x, sr: x, _signals(), _signals(2, seed=1), SR)
    assert report["band_change_db"] == pytest.approx([0.0] * 4, abs=1e-9)
    assert report["si_sdr"] > 100
    assert report["silence_peak_dbfs"] == -math.inf
    assert report["noise_attenuation_db"] == pytest.approx(0.0, abs=1e-9)
    assert transparency_checks(report) == {"bands": True, "si_sdr": None, "silence": True, "noise": False}


def test_halving_above_4k_is_minus_6_db_in_the_top_band_only():
    speech = _signals()
    changes = band_level_changes(speech[0], _halve_above_4k(speech[0], SR), SR)
    assert changes[3] == pytest.approx(20 * math.log10(0.5), abs=0.1)
    assert changes[:3] == pytest.approx([0.0] * 3, abs=0.01)
    report = transparency_report(_halve_above_4k, speech, [], SR)
    assert report["band_change_db"][3] == pytest.approx(-6.02, abs=0.1)
    assert report["band_change_db"][:3] == pytest.approx([0.0] * 3, abs=0.01)
    assert math.isnan(report["noise_attenuation_db"])
    assert transparency_checks(report)["bands"] is False


def test_a_delay_does_not_change_band_levels():
    speech = _signals(1)[0]
    assert band_level_changes(speech, np.roll(speech, 37), SR) == pytest.approx([0.0] * 4, abs=1e-9)


def test_scaling_by_a_tenth_attenuates_noise_by_20_db():
    report = transparency_report(lambda x, sr: 0.1 * x, _signals(), _signals(3, seed=2), SR)
    assert report["noise_attenuation_db"] == pytest.approx(20.0, abs=1e-4)
    assert report["noise_attenuation_db_all"] == pytest.approx([20.0] * 3, abs=1e-4)
    assert report["band_change_db"] == pytest.approx([-20.0] * 4, abs=1e-4)
    assert report["si_sdr"] > 100  # SI-SDR ignores the scale
    assert transparency_checks(report, reference_si_sdr=10.0) == {"bands": False, "si_sdr": True,
                                                                    "silence": True, "noise": True}


def test_silence_in_reports_the_output_peak():
    report = transparency_report(lambda x, sr: x + np.float32(1e-3), _signals(1), [], SR)
    assert report["silence_peak_dbfs"] == pytest.approx(-60.0, abs=1e-3)
    assert transparency_checks(report)["silence"] is False
    quiet = transparency_report(lambda x, sr: x + np.float32(1e-5), _signals(1), [], SR)
    assert quiet["silence_peak_dbfs"] == pytest.approx(-100.0, abs=1e-2)
    assert transparency_checks(quiet)["silence"] is True


def test_si_sdr_check_compares_with_the_reference():
    rng = np.random.default_rng(3)
    report = transparency_report(lambda x, sr: x + 0.005 * rng.standard_normal(x.size).astype(np.float32),
                                 _signals(), [], SR)
    assert 15 < report["si_sdr"] < 25  # 0.05 vs 0.005 noise: 20 dB
    assert transparency_checks(report, reference_si_sdr=10.0)["si_sdr"] is True
    assert transparency_checks(report, reference_si_sdr=30.0)["si_sdr"] is False


def test_band_level_changes_refuses_bad_input():
    with pytest.raises(DlspError):
        band_level_changes(np.ones(10), np.ones(11), SR)
    with pytest.raises(DlspError):
        band_level_changes(np.ones(10), np.ones(10), SR, bands=((0, 9000),))
    silent = np.zeros(64)
    assert band_level_changes(silent, silent, SR, bands=((0, 8000),)) == [0.0]


def test_a_denoiser_changing_the_shape_is_refused():
    with pytest.raises(DlspError, match="shape"):
        transparency_report(lambda x, sr: x[:-1], _signals(1), [], SR)


def test_nan_output_fails_instead_of_passing():
    def nan_on_silence(x, sr):
        with np.errstate(invalid="ignore", divide="ignore"):
            return x * (x / x)  # 0/0 = NaN where the input is zero

    report = transparency_report(nan_on_silence, _signals(1), [np.zeros(SR, np.float32)], SR)
    assert math.isnan(report["silence_peak_dbfs"])
    assert math.isnan(report["noise_attenuation_db"])
    checks = transparency_checks(report)
    assert checks["silence"] is False and checks["noise"] is False

"""Known answers for the active speech level (ITU-T P.56 method B) of dlsp.metrics.level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.metrics.level import (
    active_speech_level,
    activity_counts,
    activity_factor,
    p56_envelope,
    running_max,
    speech_level,
)

SR = 8000
SINE_DB = 10 * math.log10(0.5)  # a full-scale sine: mean power 1/2


def _sine(seconds: float, amplitude: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_full_scale_sine_is_minus_3_db():
    result = speech_level(_sine(4.0), SR)
    assert result.level_db == pytest.approx(SINE_DB, abs=0.1)
    assert result.activity == pytest.approx(1.0, abs=0.02)
    assert result.threshold_db == pytest.approx(result.level_db - 15.9, abs=1e-9)  # the margin M


def test_half_active_burst_has_the_sine_level_and_activity_one_half():
    amplitude = 0.1
    audio = _sine(20.0, amplitude)
    audio[audio.size // 2:] = 0  # 10 s of tone, then 10 s of digital silence
    result = speech_level(audio, SR)
    # The hangover (0.2 s) and the envelope's decay to the threshold count as active: about 0.26 s of 10.
    assert result.level_db == pytest.approx(20 * math.log10(amplitude) + SINE_DB, abs=0.5)
    assert result.activity == pytest.approx(0.5, abs=0.05)
    assert activity_factor(audio, SR) == result.activity


@pytest.mark.parametrize("gain", [1e-3, 0.05, 3.7])
def test_scaling_changes_the_level_by_exactly_the_gain(gain):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(3 * SR) * np.repeat(rng.random(30) > 0.4, SR // 10) * 0.05
    before, after = speech_level(audio, SR), speech_level(gain * audio, SR)
    assert after.level_db - before.level_db == pytest.approx(20 * math.log10(gain), abs=1e-9)
    assert after.activity == pytest.approx(before.activity, abs=1e-12)


def test_digital_silence_is_minus_infinity():
    result = speech_level(np.zeros(SR), SR)
    assert result.level_db == -math.inf
    assert result.activity == 0.0
    assert active_speech_level(np.zeros(10), SR) == -math.inf


def test_bursts_over_noise_40_db_below_have_the_bursts_level():
    rng = np.random.default_rng(1)
    amplitude, burst, gap, count = 0.1, 3.0, 1.0, 4
    n = int(SR * (count * (burst + gap) + gap))
    on = np.zeros(n, bool)
    for i in range(count):
        start = int(SR * (gap + i * (burst + gap)))
        on[start:start + int(SR * burst)] = True
    tone = amplitude * np.sin(2 * np.pi * 300 * np.arange(n) / SR)
    noise = amplitude / math.sqrt(2) * 10 ** (-40 / 20) * rng.standard_normal(n)
    result = speech_level(tone * on + noise, SR)
    assert result.level_db == pytest.approx(20 * math.log10(amplitude) + SINE_DB, abs=0.5)
    # Active: the bursts plus about 0.26 s of hangover and envelope decay after each; the noise never is.
    assert result.activity == pytest.approx(count * (burst + 0.26) / (n / SR), abs=0.03)


def test_activity_counts_follow_the_reference_hangover_loop():
    """The running-maximum count equals the loop of P.56's reference code (sv56) at every threshold."""
    rng = np.random.default_rng(2)
    audio = rng.standard_normal(3000) * np.repeat(rng.random(30) > 0.5, 100)
    envelope, hangover = p56_envelope(audio, SR), 40
    thresholds = np.geomspace(1e-4, envelope.max(), 25)
    counts = np.zeros(thresholds.size)
    hang = np.full(thresholds.size, hangover)
    for value in envelope:
        for j, c in enumerate(thresholds):
            if value >= c:
                counts[j] += 1
                hang[j] = 0
            elif hang[j] < hangover:
                counts[j] += 1
                hang[j] += 1
            else:
                break
    np.testing.assert_array_equal(activity_counts(running_max(envelope, hangover), thresholds), counts)


def test_lone_click_gives_a_finite_level():
    audio = np.zeros(SR)
    audio[100] = 0.5
    result = speech_level(audio, SR)
    assert math.isfinite(result.level_db)
    assert 0 < result.activity <= 1


@pytest.mark.parametrize("bad", [np.zeros((2, 100)), np.zeros(0), np.array([0.0, np.nan])])
def test_bad_input_is_refused(bad):
    with pytest.raises(DlspError):
        speech_level(bad, SR)

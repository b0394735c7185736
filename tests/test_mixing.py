"""dlsp.audio.mixing: exact SNRs, exact sums, the clipping guard, noise fitting and SNR specifications."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.audio.mixing import (
    MixResult,
    SnrSpec,
    crop_or_pad,
    fit_noise,
    measure_snr,
    mix_at_snr,
    parse_snr_spec,
)
from dlsp.errors import DlspError


def _speechlike(rng: np.random.Generator, n: int, amp: float = 0.3) -> np.ndarray:
    # Noise bursts under a slow envelope: energy varies over time like speech does.
    envelope = np.abs(np.sin(np.linspace(0, 7 * np.pi, n)))
    return (amp * envelope * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("snr_db", [-10.0, -5.0, 0.0, 7.5, 20.0, 30.0])
@pytest.mark.parametrize("noise_len", [700, 4000, 16000])
def test_mix_reaches_snr_and_sums_exactly(rng, snr_db, noise_len):
    clean = _speechlike(rng, 4000)
    noise = rng.standard_normal(noise_len).astype(np.float32)
    result = mix_at_snr(clean, noise, snr_db, np.random.default_rng(0))
    assert isinstance(result, MixResult) and result.snr_db == snr_db
    assert result.noisy.shape == result.clean.shape == result.noise.shape == (4000,)
    assert result.noisy.dtype == np.float32
    assert abs(measure_snr(result.clean, result.noise) - snr_db) < 0.01
    np.testing.assert_array_equal(result.noisy, result.clean + result.noise)


def test_quiet_mix_leaves_clean_untouched(rng):
    clean = _speechlike(rng, 3000, amp=0.05)
    result = mix_at_snr(clean, rng.standard_normal(5000), 10.0, rng)
    assert result.gain == 1.0
    np.testing.assert_array_equal(result.clean, clean)


@pytest.mark.parametrize("peak_limit", [0.99, 0.5])
def test_peak_guard_scales_all_three_and_keeps_snr(rng, sine, peak_limit):
    clean = sine(440, seconds=0.5, amp=0.95)
    noise = rng.standard_normal(8000).astype(np.float32)
    result = mix_at_snr(clean, noise, -10.0, rng, peak_limit=peak_limit)
    assert result.gain < 1.0
    for audio in (result.noisy, result.clean, result.noise):
        assert np.max(np.abs(audio)) <= peak_limit
    assert abs(measure_snr(result.clean, result.noise) + 10.0) < 0.01
    np.testing.assert_allclose(result.clean, clean * result.gain, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(result.noisy, result.clean + result.noise)


def test_level_sets_mixture_rms(rng):
    clean = _speechlike(rng, 4000, amp=0.01)
    result = mix_at_snr(clean, rng.standard_normal(4000), 5.0, rng, level_db=-25.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(result.noisy.astype(np.float64) ** 2)))
    assert abs(rms_db + 25.0) < 0.01
    assert abs(measure_snr(result.clean, result.noise) - 5.0) < 0.01


def test_multichannel_mix(rng):
    clean = np.stack([_speechlike(rng, 2000), _speechlike(rng, 2000, amp=0.1)])
    result = mix_at_snr(clean, rng.standard_normal((2, 900)), 3.0, rng)
    assert result.noisy.shape == (2, 2000)
    assert abs(measure_snr(result.clean, result.noise) - 3.0) < 0.01


@pytest.mark.parametrize(
    ("clean", "noise", "snr", "match"),
    [
        (np.zeros(1000), np.ones(1000), 0.0, "clean signal is silent"),
        (np.ones(1000) * 0.1, np.zeros(1000), 0.0, "noise is silent"),
        (np.ones(1000) * 0.1, np.ones(1000), float("nan"), "finite"),
        (np.ones(1000) * 0.1, np.ones(1000), float("inf"), "finite"),
        (np.ones(1000) * 0.1, np.ones((2, 1000)), 0.0, "differ in channels"),
        (np.ones((2, 1000)) * 0.1, np.ones((3, 1000)), 0.0, "differ in channels"),
        (np.ones((1, 2, 1000)) * 0.1, np.ones(1000), 0.0, r"\(time,\) or \(channels, time\)"),
        (np.ones(0), np.ones(1000), 0.0, "empty"),
        (np.array([0.1, np.nan, 0.2]), np.ones(10), 0.0, "NaN"),
    ],
)
def test_mix_rejects_bad_inputs(clean, noise, snr, match):
    with pytest.raises(DlspError, match=match):
        mix_at_snr(clean, noise, snr, np.random.default_rng(0))


def test_silent_noise_crop_is_refused(rng):
    noise = np.zeros(20000, dtype=np.float32)
    noise[:10] = 0.5  # audible only at the very start; a 1000-sample crop elsewhere is silent
    with pytest.raises(DlspError, match="noise crop is silent"):
        mix_at_snr(_speechlike(rng, 1000), noise, 0.0, np.random.default_rng(5))


def test_fit_noise_crops_longer_noise_at_a_seeded_random_offset():
    noise = np.arange(10000, dtype=np.float32)
    crops = [fit_noise(noise, 1000, np.random.default_rng(seed)) for seed in range(5)]
    for crop in crops:
        assert crop.shape == (1000,)
        np.testing.assert_array_equal(np.diff(crop), 1.0)  # one contiguous stretch
    assert len({float(c[0]) for c in crops}) == 5
    np.testing.assert_array_equal(fit_noise(noise, 1000, np.random.default_rng(3)), crops[3])
    np.testing.assert_array_equal(fit_noise(noise, 10000, np.random.default_rng(0)), noise)


def test_fit_noise_loops_shorter_noise_with_crossfades(rng, sine):
    noise = sine(437, seconds=0.0625)  # 1000 samples; the end does not meet the start
    fade = 64
    looped = fit_noise(noise, 5000, np.random.default_rng(1), crossfade=fade)
    assert looped.shape == (5000,)
    period = len(noise) - fade
    np.testing.assert_allclose(looped[fade + period:], looped[fade:-period], atol=1e-6)  # periodic
    natural_step = np.max(np.abs(np.diff(noise)))
    assert np.max(np.abs(np.diff(np.tile(noise, 5)))) > 5 * natural_step  # a plain tile clicks
    assert np.max(np.abs(np.diff(looped))) < 1.5 * natural_step  # the crossfade does not
    other = fit_noise(noise, 5000, np.random.default_rng(2), crossfade=fade)
    assert not np.array_equal(looped, other)
    np.testing.assert_array_equal(looped, fit_noise(noise, 5000, np.random.default_rng(1), crossfade=fade))


def test_fit_noise_joins_keep_the_noise_power(rng):
    # Same crop offset (same generator state) for 400 noises: the power at each position is an average over
    # realizations, and a linear crossfade of uncorrelated noise would dip to half power mid-join.
    looped = np.stack([fit_noise(rng.standard_normal(512), 2000, np.random.default_rng(0), crossfade=128)
                       for _ in range(400)])
    power = np.convolve(np.mean(looped.astype(np.float64) ** 2, axis=0), np.ones(32) / 32, mode="valid")
    assert power.min() > 0.88 and power.max() < 1.12


def test_fit_noise_multichannel_and_tiny_noise(rng):
    stereo = rng.standard_normal((2, 300)).astype(np.float32)
    out = fit_noise(stereo, 1000, rng)
    assert out.shape == (2, 1000)
    assert fit_noise(np.array([0.5], dtype=np.float32), 7, rng).tolist() == [0.5] * 7
    with pytest.raises(DlspError, match="empty"):
        fit_noise(np.zeros(0), 10, rng)


def test_crop_or_pad(rng):
    audio = np.arange(1, 101, dtype=np.float32)
    padded = crop_or_pad(audio, 150, rng)
    assert padded.shape == (150,) and np.count_nonzero(padded) == 100
    start = int(np.flatnonzero(padded)[0])
    np.testing.assert_array_equal(padded[start:start + 100], audio)
    cropped = crop_or_pad(audio, 40, rng)
    assert cropped.shape == (40,) and np.all(np.diff(cropped) == 1)
    burst = np.zeros(10000, dtype=np.float32)
    burst[5000:5010] = 0.5
    assert np.max(crop_or_pad(burst, 100, np.random.default_rng(0))) == 0.5  # never a silent crop


def test_parse_snr_range():
    spec = parse_snr_spec("-5:20")
    assert (spec.low, spec.high, spec.values) == (-5.0, 20.0, ())
    draws = [spec.sample(np.random.default_rng(i)) for i in range(200)]
    assert min(draws) >= -5 and max(draws) <= 20 and np.std(draws) > 5
    assert parse_snr_spec(" 5 : 5 ").sample(np.random.default_rng(0)) == 5.0
    assert parse_snr_spec("-7.5:1e1").high == 10.0


def test_parse_snr_list():
    spec = parse_snr_spec("0, 5,10")
    assert spec.values == (0.0, 5.0, 10.0)
    rng = np.random.default_rng(0)
    assert {spec.sample(rng) for _ in range(100)} == {0.0, 5.0, 10.0}
    assert parse_snr_spec("-3").values == (-3.0,)
    assert "one of 0, 5, 10 dB" in spec.describe()
    assert SnrSpec(-5, 20).describe() == "-5 to 20 dB (uniform)"


def test_parse_snr_empty_range_message():
    with pytest.raises(DlspError) as info:
        parse_snr_spec("10:-5")
    assert str(info.value) == "SNR range 10:-5 is empty: low must not exceed high"


@pytest.mark.parametrize("text", ["", "abc", "1:2:3", "5,", "nan:5", "inf", "1:x", "--5"])
def test_parse_snr_rejects_garbage(text):
    with pytest.raises(DlspError, match="SNR specification"):
        parse_snr_spec(text)


def test_parse_level_names_the_quantity():
    with pytest.raises(DlspError, match="level range -15:-35 is empty"):
        parse_snr_spec("-15:-35", "level")

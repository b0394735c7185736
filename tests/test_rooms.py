"""dlsp.audio.rooms: simulated room impulse responses and the early-reflection target."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.audio.rooms import EARLY_MS, reverberate, simulate_rir

SR = 16000


def test_simulated_rir_starts_with_its_direct_path_and_decays():
    rir = simulate_rir(np.random.default_rng(0), SR)
    assert rir.dtype == np.float32 and rir[0] == pytest.approx(1.0)
    assert np.max(np.abs(rir[1:])) <= 1.0 + 1e-6
    energy = np.cumsum(rir[::-1].astype(np.float64) ** 2)[::-1]  # Schroeder's backward integral
    decay_db = 10 * np.log10(energy / energy[0])
    assert decay_db[min(len(rir) - 1, int(0.3 * SR))] < -5  # 300 ms later most of the energy is gone
    np.testing.assert_array_equal(rir, simulate_rir(np.random.default_rng(0), SR))  # same seed, same room


def test_reverberate_keeps_the_early_part_as_target_and_the_whole_room_in_the_input():
    speech = np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    late = int(0.1 * SR)  # a reflection after 100 ms: late, beyond EARLY_MS
    early = int(0.02 * SR)  # one within the early window
    assert early < EARLY_MS * SR / 1000 < late
    rir = np.zeros(late + 1, np.float32)
    rir[0], rir[early], rir[late] = 1.0, 0.5, 0.25
    wet, target = reverberate(speech, rir, SR)
    expected_target = speech.copy()
    expected_target[early:] += 0.5 * speech[:-early]
    expected_wet = expected_target.copy()
    expected_wet[late:] += 0.25 * speech[:-late]
    np.testing.assert_allclose(target, expected_target, atol=1e-4)
    np.testing.assert_allclose(wet, expected_wet, atol=1e-4)

"""Synthetic speech: determinism, speech-like utterances, pitch in the speaker's range, separable speakers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dlsp.audio.synthetic import SyntheticSpeaker, make_speakers, synth_utterance
from dlsp.errors import DlspError

SR = 16000


def _f0_estimates(audio: np.ndarray, sr: int = SR, fmin: float = 50.0, fmax: float = 500.0) -> np.ndarray:
    """f0 of loud, clearly periodic 50 ms frames by autocorrelation (low-passed at 1 kHz, octave-guarded)."""
    low = signal.sosfiltfilt(signal.butter(4, 1000, fs=sr, output="sos"), audio.astype(float))
    size = int(0.05 * sr)
    frames = np.lib.stride_tricks.sliding_window_view(low, size)[:: size // 2]
    energy = np.sum(frames**2, axis=1)
    shortest, longest = int(sr / fmax), int(sr / fmin)
    estimates = []
    for frame in frames[energy > 0.1 * energy.max()]:
        frame = frame - frame.mean()
        corr = np.correlate(frame, frame, "full")[size - 1:] / (frame @ frame) / (1 - np.arange(size) / size)
        band = corr[shortest:longest]
        if band.max() < 0.5:
            continue
        # The shortest lag whose peak is nearly as high as the best one: the period, not a multiple of it.
        peaks = signal.find_peaks(band, height=0.85 * band.max())[0]
        estimates.append(sr / (shortest + (peaks[0] if len(peaks) else np.argmax(band))))
    return np.array(estimates)


# --- speakers and utterances ------------------------------------------------------------------------------


def test_speakers_span_the_voice_range_deterministically():
    speakers = make_speakers(8, seed=0)
    assert [s.name for s in speakers] == [f"spk{i:02d}" for i in range(8)]
    assert make_speakers(8, seed=0) == speakers
    assert make_speakers(8, seed=1) != speakers
    assert all(85 <= s.f0_low < s.f0_high <= 400 for s in speakers)
    assert speakers[0].f0_high <= 160 and speakers[-1].f0_low >= 230  # male-like to child-like
    assert all(0.85 <= s.formant_scale <= 1.2 for s in speakers)
    assert all(0 < s.breathiness < 0.5 and 3 <= s.rate <= 6 for s in speakers)
    assert np.all(np.diff([s.f0_low for s in speakers]) > 0)
    assert [s.name for s in make_speakers(12)][-1] == "spk11"
    with pytest.raises(DlspError):
        make_speakers(0)


def test_utterance_is_deterministic_and_seed_dependent():
    speaker = make_speakers(4)[1]
    first = synth_utterance(speaker, 1.0, rng=3)
    np.testing.assert_array_equal(first, synth_utterance(speaker, 1.0, rng=np.random.default_rng(3)))
    assert not np.allclose(first, synth_utterance(speaker, 1.0, rng=4))
    np.testing.assert_array_equal(synth_utterance(speaker, 0.5), synth_utterance(speaker, 0.5))  # None is 0


@pytest.mark.parametrize(("seconds", "sr"), [(1.3, 16000), (0.25, 16000), (1.0, 8000), (0.7, 22050)])
def test_utterance_length_dtype_and_level(seconds, sr):
    for speaker in make_speakers(3):
        audio = synth_utterance(speaker, seconds, sr, rng=7)
        assert audio.shape == (round(seconds * sr),) and audio.dtype == np.float32
        assert np.all(np.isfinite(audio))
        peak_db = 20 * np.log10(np.max(np.abs(audio)))
        assert -6.1 <= peak_db <= -2.9, peak_db
        assert np.sqrt(np.mean(audio**2)) > 0.01  # not just a click: speech fills the utterance


def test_utterance_has_pauses_and_syllable_rhythm():
    audio = synth_utterance(make_speakers(4)[2], 3.0, rng=1).astype(float)
    envelope = np.sqrt(np.convolve(audio**2, np.ones(160) / 160, "same"))[::160]  # 10 ms frames
    level = 20 * np.log10(envelope + 1e-9) - 20 * np.log10(envelope.max())
    assert 0.05 < np.mean(level < -40) < 0.6  # silent stretches: lead, tail, closures and pauses
    modulation = np.abs(np.fft.rfft(envelope - envelope.mean())) ** 2
    rates = np.fft.rfftfreq(len(envelope), 0.01)
    band = (rates >= 1) & (rates <= 16)
    centroid = np.sum(rates[band] * modulation[band]) / np.sum(modulation[band])
    assert 2.0 <= centroid <= 7.0  # syllables (and pauses) modulate the level a few times per second


@pytest.mark.parametrize("index", [0, 3, 7])
def test_voiced_pitch_lies_in_the_speakers_range(index):
    speaker = make_speakers(8)[index]
    f0 = np.concatenate([_f0_estimates(synth_utterance(speaker, 2.0, rng=seed)) for seed in range(2)])
    assert len(f0) >= 20
    inside = (f0 >= 0.8 * speaker.f0_low) & (f0 <= 1.2 * speaker.f0_high)
    assert np.mean(inside) >= 0.9, (speaker, np.percentile(f0, [5, 50, 95]))
    assert speaker.f0_low <= np.median(f0) <= speaker.f0_high


def test_pitch_estimator_would_notice_a_wrong_range():
    low, high = make_speakers(8)[0], make_speakers(8)[7]
    low_f0 = np.median(_f0_estimates(synth_utterance(low, 2.0, rng=0)))
    assert not 0.8 * high.f0_low <= low_f0 <= 1.2 * high.f0_high


def _mean_log_mel(audio: np.ndarray, bands: int = 40) -> np.ndarray:
    """Mean log power of the loud (vowel) frames in mel-spaced bands, level removed.

    Shape: `(time,) -> (bands,)`.
    """
    freqs, _, spectrum = signal.stft(audio, SR, nperseg=512, noverlap=352)
    mel = 2595 * np.log10(1 + freqs / 700)
    edges = np.linspace(mel[1], mel[-1], bands + 1)
    band_of_bin = np.clip(np.searchsorted(edges, mel, side="right") - 1, 0, bands - 1)
    power = np.stack([np.mean(np.abs(spectrum[band_of_bin == b]) ** 2, axis=0) for b in range(bands)])
    log_power = np.log(power + 1e-12)
    feature = log_power[:, log_power.max(axis=0) > log_power.max() - 6].mean(axis=1)
    return feature - feature.mean()  # levels vary by design; compare spectral shape


def test_speakers_are_separable_by_their_long_term_spectrum():
    # The speaker-encoder requirement in miniature: nearest centroid of 3 utterances, 2 held out per speaker.
    speakers = make_speakers(6, seed=0)
    features = {s.name: [_mean_log_mel(synth_utterance(s, 2.0, rng=100 * i + k)) for k in range(5)]
                for i, s in enumerate(speakers)}
    centroids = {name: np.mean(f[:3], axis=0) for name, f in features.items()}
    guesses = [(name, min(centroids, key=lambda c, v=held_out: np.linalg.norm(v - centroids[c])))
               for name, f in features.items() for held_out in f[3:]]
    accuracy = np.mean([truth == guess for truth, guess in guesses])
    assert accuracy >= 0.8, guesses


def test_bad_durations_and_rates_are_user_errors():
    speaker = SyntheticSpeaker("x", 100, 150, 1.0, 0.1, 4.0)
    for seconds, sr in [(0.0, 16000), (-1.0, 16000), (float("nan"), 16000), (1.0, 4000)]:
        with pytest.raises(DlspError):
            synth_utterance(speaker, seconds, sr)

"""Synthetic noises for dlsp's default data: white, pink, brown, mains hum, babble of synthetic talkers (never
the corpus speakers), machine and clicks. Made here and never downloaded; the same generator gives the same noise.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from dlsp.audio.synthetic import duration_samples, random_speaker, synth_utterance
from dlsp.errors import DlspError

NOISE_KINDS = ("white", "pink", "brown", "hum", "babble", "machine", "clicks")


def synth_noise(kind: str, seconds: float, sample_rate: int = 16000,
                rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Noise of one of `NOISE_KINDS`, normalised to an RMS of -26..-20 dBFS with its peak at most -1 dBFS.

    Shape: `() -> (time,)` float32 with `time == round(seconds * sample_rate)`.
    """
    if kind not in NOISE_KINDS:
        raise DlspError(f"unknown noise kind {kind!r} (use one of {', '.join(NOISE_KINDS)})")
    n = duration_samples(seconds, sample_rate)
    rng = np.random.default_rng(0 if rng is None else rng)
    noise = _NOISE_MAKERS[kind](n, sample_rate, rng)
    noise = noise - noise.mean()
    rms, peak = float(np.sqrt(np.mean(noise**2))), float(np.max(np.abs(noise)))
    gain = min(10 ** (rng.uniform(-26, -20) / 20) / max(rms, 1e-12), 10 ** (-1 / 20) / max(peak, 1e-12))
    return (noise * gain).astype(np.float32)


def _shaped_noise(n: int, rng: np.random.Generator, exponent: float, corner: float, sr: int) -> np.ndarray:
    """Gaussian noise with power ~ 1/f**exponent above `corner` Hz (flat below), DC-free."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum *= np.maximum(freqs, corner) ** (-exponent / 2)
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n)


def _white(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def _pink(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    return _shaped_noise(n, rng, 1.0, 20.0, sr)


def _brown(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    leak = np.exp(-2 * np.pi * 20.0 / sr)  # a leaky integrator: 1/f**2 above 20 Hz, bounded below
    return signal.lfilter([1.0], [1.0, -leak], rng.standard_normal(n))


def _slow_wobble(n: int, sr: int, rng: np.random.Generator, depth: float, rate: float) -> np.ndarray:
    knots = rng.normal(0, 1, int(n / sr * rate) + 4)
    return depth * np.interp(np.arange(n) / sr * rate, np.arange(len(knots)), knots)


def _harmonic_wave(cycles: np.ndarray, levels: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of `levels[k] * sin(2 pi (k + 1) cycles + offsets[k])`, read from a one-period wavetable, which is
    much faster than one sine per harmonic. Shape: `(time,) -> (time,)`.
    """
    size = 4096
    grid = 2 * np.pi * np.arange(size + 1) / size
    harmonics = np.arange(1, len(levels) + 1)[:, None]
    table = np.sum(levels[:, None] * np.sin(harmonics * grid + offsets[:, None]), axis=0)
    position = (cycles - np.floor(cycles)) * size
    index = position.astype(np.int64)
    weight = position - index
    return table[index] * (1 - weight) + table[index + 1] * weight


def _hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    mains = float(rng.choice([50.0, 60.0]))
    cycles = np.cumsum(mains * (1 + _slow_wobble(n, sr, rng, 0.001, 0.5))) / sr
    harmonics = np.arange(1, min(12, int(0.45 * sr / mains)) + 1)
    levels = harmonics**-1.2 * rng.uniform(0.3, 1.0, len(harmonics)) * np.where(harmonics == 2, 2.0, 1.0)
    hum = _harmonic_wave(cycles, levels, rng.uniform(0, 2 * np.pi, len(harmonics)))
    return hum * (1 + _slow_wobble(n, sr, rng, 0.05, 1.0)) + 0.003 * rng.standard_normal(n)


def _babble(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    babble = np.zeros(n)
    for talker in range(int(rng.integers(4, 9))):
        speech = synth_utterance(random_speaker(rng, f"babble{talker}"), n / sr, sr, rng).astype(float)
        speech = np.roll(speech, rng.integers(n))  # talkers start at different times (the ends are silent)
        babble += speech / (np.sqrt(np.mean(speech**2)) + 1e-12) * 10 ** (rng.uniform(-5, 5) / 20)
    return babble


def _machine(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    seconds = np.arange(n) / sr
    machine = np.zeros(n)
    for freq in np.exp(rng.uniform(np.log(150), np.log(min(4000, 0.4 * sr)), int(rng.integers(2, 5)))):
        level = 10 ** (rng.uniform(-30, -12) / 20)
        machine += _harmonic_wave(freq * seconds, np.array([level]), rng.uniform(0, 2 * np.pi, 1))
    firing = rng.uniform(25, 70)
    cycles = np.cumsum(firing * (1 + _slow_wobble(n, sr, rng, 0.01, 0.3))) / sr
    harmonics = np.arange(1, min(40, int(0.45 * sr / firing)) + 1)
    engine = _harmonic_wave(cycles, harmonics**-0.8 * rng.uniform(0.3, 1, len(harmonics)),
                            rng.uniform(0, 2 * np.pi, len(harmonics)))
    beat = _harmonic_wave(cycles / int(rng.choice([2, 4])), np.array([0.5]), np.zeros(1))  # the crankshaft
    broadband = signal.sosfilt(signal.butter(2, [200, min(3000, 0.4 * sr)], "bandpass", fs=sr, output="sos"),
                               rng.standard_normal(n))
    return machine + engine * (1 + beat) + 0.3 * broadband + 0.1 * _brown(n, sr, rng)


def _clicks(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    background = _shaped_noise(n, rng, 1.0, 20.0, sr)
    noise = 0.003 * background / np.sqrt(np.mean(background**2))
    starts = [rng.integers(0, n, rng.poisson(rng.uniform(3, 12) * n / sr))]
    for _ in range(int(rng.integers(0, 4))):  # crackles: dense runs of small clicks
        start = int(rng.integers(0, n))
        starts.append(start + rng.integers(0, int(rng.uniform(0.05, 0.2) * sr), int(rng.integers(20, 80))))
    starts = np.concatenate(starts)
    length = max(int(0.003 * sr), 1)
    decay = rng.uniform(0.0002, 0.0015, len(starts))[:, None] * sr
    amplitude = 10 ** (rng.uniform(-30, 0, len(starts)) / 20)[:, None]
    shapes = amplitude * rng.standard_normal((len(starts), length)) * np.exp(-np.arange(length) / decay)
    index = (starts[:, None] + np.arange(length)) % n
    np.add.at(noise, index, shapes)
    return noise


_NOISE_MAKERS = {"white": _white, "pink": _pink, "brown": _brown, "hum": _hum, "babble": _babble,
                 "machine": _machine, "clicks": _clicks}

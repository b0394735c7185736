"""Signal augmentations for training data: play a recording faster or slower, colour it with a random equaliser.

A denoiser trained on a few noise recordings learns those recordings; heard at other speeds (every frequency
scales) and through other colourings (as another room, machine or microphone would colour them), the same
recordings stand for many more. Pure functions of the audio and a generator.
"""

from __future__ import annotations

import math

import numpy as np
import soxr
from scipy import signal


def change_speed(audio: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play `audio` at `factor` times its speed (> 1: shorter and higher; every frequency scales by `factor`).

    Shape: `(time,) -> (round(time / factor),)`, float32.
    """
    if factor <= 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    if factor == 1.0:
        return np.asarray(audio, np.float32)
    return soxr.resample(np.asarray(audio, np.float32), sample_rate * factor, sample_rate).astype(np.float32)


def peaking_biquad(centre_hz: float, gain_db: float, q: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """`(b, a)` of a peaking equaliser band (Bristow-Johnson's Audio EQ Cookbook): `gain_db` at `centre_hz`,
    0 dB far from it, bandwidth set by `q`."""
    amplitude = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * centre_hz / sample_rate
    alpha = math.sin(w0) / (2.0 * q)
    cos = math.cos(w0)
    b = np.array([1.0 + alpha * amplitude, -2.0 * cos, 1.0 - alpha * amplitude])
    a = np.array([1.0 + alpha / amplitude, -2.0 * cos, 1.0 - alpha / amplitude])
    return b / a[0], a / a[0]


def random_eq(audio: np.ndarray, rng: np.random.Generator, sample_rate: int, max_gain_db: float,
              bands: int = 3) -> np.ndarray:
    """`audio` through `bands` peaking bands with centres log-uniform in 60 Hz .. 0.45 x rate, gains uniform in
    +-`max_gain_db` and Q log-uniform in 0.5 .. 3.

    Shape: `(time,) -> (time,)`, float32.
    """
    out = np.asarray(audio, np.float64)
    for _ in range(bands):
        centre = math.exp(rng.uniform(math.log(60.0), math.log(0.45 * sample_rate)))
        q = math.exp(rng.uniform(math.log(0.5), math.log(3.0)))
        b, a = peaking_biquad(centre, rng.uniform(-max_gain_db, max_gain_db), q, sample_rate)
        out = signal.lfilter(b, a, out)
    return out.astype(np.float32)

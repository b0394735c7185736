"""Active speech level: ITU-T P.56 method B.

The level of speech is the mean power over the time it is active, not over the whole recording, so pauses do not
lower it. P.56 method B (ITU-T Rec. P.56, 12/2011, section 6.2 and its reference code `sv56`):

- envelope: the rectified signal `|x|` smoothed twice by a first-order exponential filter with time constant
  `T = 0.03 s` (`p = g p + (1 - g) |x|`, `q = g q + (1 - g) p`, `g = exp(-1 / (T fs))`);
- activity at a threshold `c`: a sample is active when the envelope is at or above `c`, or was within the
  hangover `H = 0.2 s` before it (`ceil(H fs)` samples);
- for each threshold `c_j`, the level of the samples active at it, `A_j = 10 log10(sum x^2 / n_j)`, and
  `C_j = 20 log10(c_j)`; going up from the lowest threshold, the active speech level is where `A - C` first
  falls to the margin `M = 15.9 dB`, with `A` (and `C`) linearly interpolated between the two thresholds that
  bracket it, as the reference code's bisection does;
- activity factor: mean power over the whole signal divided by the active level's power (the interpolated share
  of active samples).

Units: dB re full-scale RMS, `10 log10(mean power)` with power `x^2` for samples in [-1, 1]: a full-scale square
wave is 0 dB and a full-scale sine -3.01 dB (the same as P.56's dBov). Not dB re a full-scale sine.

Choices of this implementation:

- thresholds are spaced `THRESHOLD_STEP_DB` = 0.25 dB (P.56's reference code uses 6 dB steps, powers of 2) and
  anchored at the envelope's maximum rather than at full scale, from it down to `THRESHOLD_RANGE_DB` below:
  scaling a signal by `g` scales envelope and thresholds alike, so the level changes by exactly `20 log10(g)`
  (to float rounding) and the activity factor not at all; the fixed grid of the reference code gives that only
  up to its interpolation error;
- the activity count at every threshold at once: the hangover rule makes sample `k` active at `c` exactly when
  the maximum of the envelope over samples `[k - hangover, k]` is at least `c`, so one running maximum and a
  sort give the counts;
- if `A - C` is already at or below the margin at the lowest threshold, the lowest threshold's level is returned;
  if it never falls to the margin (an impulsive signal such as a lone click, whose short-lived envelope stays far
  below its energy), the threshold where `A - C` is smallest. Digital silence (all zeros) has level `-inf` and
  activity 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlsp.errors import DlspError

TIME_CONSTANT_S = 0.03
HANGOVER_S = 0.2
MARGIN_DB = 15.9
THRESHOLD_STEP_DB = 0.25
THRESHOLD_RANGE_DB = 150.0


@dataclass(frozen=True)
class SpeechLevel:
    """An active speech level measurement.

    Attributes:
        level_db: active speech level in dB re full-scale RMS (a full-scale sine is -3.01 dB); `-inf` for silence.
        activity: share of the signal that is active, in [0, 1] (0 for silence).
        threshold_db: the activity threshold `C` at the crossing, in dB re full scale (`-inf` for silence).
    """

    level_db: float
    activity: float
    threshold_db: float


def speech_level(audio: np.ndarray, sample_rate: int) -> SpeechLevel:
    """Active speech level and activity factor of a mono signal by ITU-T P.56 method B (see the module docstring).

    Shape: `(time,)`.

    Raises:
        DlspError: not a non-empty 1-D array, NaN or Inf samples, or a sample rate that is not positive.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise DlspError(f"active speech level needs a non-empty (time,) signal, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DlspError("audio contains NaN or Inf samples")
    if not sample_rate > 0:
        raise DlspError(f"sample rate must be positive, got {sample_rate}")
    energy = float(np.sum(x * x))
    if energy == 0:
        return SpeechLevel(-math.inf, 0.0, -math.inf)
    envelope = p56_envelope(x, sample_rate)
    held = running_max(envelope, math.ceil(HANGOVER_S * sample_rate))
    top = float(held.max())
    if top <= 0:  # energy so small that the envelope underflowed
        return SpeechLevel(-math.inf, 0.0, -math.inf)
    # Thresholds from the lowest up, in dB and as amplitudes; counts of samples active at each.
    steps = np.arange(round(THRESHOLD_RANGE_DB / THRESHOLD_STEP_DB), -1, -1)
    c_db = 20 * math.log10(top) - steps * THRESHOLD_STEP_DB
    counts = activity_counts(held, 10 ** (c_db / 20))
    with np.errstate(divide="ignore"):
        a_db = 10 * np.log10(energy / counts)  # +inf where nothing is active (never at the lowest threshold)
    delta = a_db - c_db
    below = np.flatnonzero(delta <= MARGIN_DB)
    if below.size == 0:
        j = int(np.argmin(delta))
        level, threshold = float(a_db[j]), float(c_db[j])
    elif below[0] == 0:
        level, threshold = float(a_db[0]), float(c_db[0])
    else:
        j = int(below[0])
        t = (delta[j - 1] - MARGIN_DB) / (delta[j - 1] - delta[j])
        level = float(a_db[j - 1] + t * (a_db[j] - a_db[j - 1]))
        threshold = float(c_db[j - 1] + t * (c_db[j] - c_db[j - 1]))
    activity = energy / x.size / 10 ** (level / 10)
    return SpeechLevel(level, float(min(1.0, activity)), threshold)


def active_speech_level(audio: np.ndarray, sample_rate: int) -> float:
    """Active speech level in dB re full-scale RMS (a full-scale sine is -3.01 dB) by ITU-T P.56 method B;
    `-inf` for digital silence. `speech_level` also gives the activity factor.

    Shape: `(time,)`.
    """
    return speech_level(audio, sample_rate).level_db


def activity_factor(audio: np.ndarray, sample_rate: int) -> float:
    """Share of the signal that P.56 method B counts as active speech, in [0, 1] (0 for silence)."""
    return speech_level(audio, sample_rate).activity


def p56_envelope(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The P.56 envelope: `|x|` through two first-order exponential smoothers with time constant 0.03 s.

    Shape: `(time,) -> (time,)`, float64.
    """
    from scipy.signal import lfilter

    g = math.exp(-1.0 / (TIME_CONSTANT_S * sample_rate))
    p = lfilter([1 - g], [1, -g], np.abs(np.asarray(audio, dtype=np.float64)))
    return lfilter([1 - g], [1, -g], p)


def running_max(values: np.ndarray, hangover: int) -> np.ndarray:
    """`out[k] = max(values[max(0, k - hangover) : k + 1])`: a sample is active at a threshold exactly when this
    is at least the threshold (the P.56 hangover rule).

    Shape: `(time,) -> (time,)`.
    """
    from scipy.ndimage import maximum_filter1d

    if hangover <= 0:
        return np.asarray(values, dtype=np.float64).copy()
    size = hangover + 1
    # scipy's window for output k is input[k - origin - size // 2 : ... + size]; it must start at k - hangover.
    origin = hangover - size // 2
    return maximum_filter1d(np.asarray(values, dtype=np.float64), size=size, mode="constant", cval=-np.inf,
                            origin=origin)


def activity_counts(held: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Number of samples whose held envelope (`running_max`) is at or above each threshold.

    Shape: `(time,)` and `(thresholds,)` -> `(thresholds,)` float64.
    """
    ordered = np.sort(held)
    return (ordered.size - np.searchsorted(ordered, thresholds, side="left")).astype(np.float64)

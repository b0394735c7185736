"""Mixing speech with noise at a chosen signal-to-noise ratio.

SNR is an energy ratio over the whole clip: `10 * log10(sum(clean**2) / sum(noise**2))`. The noise is fitted
to the clean length first (a random crop, or a loop with crossfaded joins), then scaled so the ratio is exact.
`mix_at_snr` returns the scaled components with the mixture, so `noisy == clean + noise` holds sample for
sample and a training target never disagrees with its input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from dlsp.audio.io import is_silent
from dlsp.errors import DlspError

# Loop joins of short noise are crossfaded over this many samples (16 ms at 16 kHz): long enough to hide the
# click of a discontinuity, short enough not to smear the noise.
DEFAULT_CROSSFADE = 256
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*:\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class MixResult:
    """A mixture and its exact components.

    Attributes:
        noisy: `clean + noise`, float32.
        clean: the clean signal as it sits in the mixture (scaled by `gain`).
        noise: the fitted, SNR-scaled noise as it sits in the mixture (scaled by `gain`).
        snr_db: the SNR of `clean` to `noise`.
        gain: the common factor applied to all three by the level target and the clipping guard (1.0 if none).
    """

    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    snr_db: float
    gain: float


@dataclass(frozen=True)
class SnrSpec:
    """SNRs to draw from: uniform in `[low, high]`, or one of `values` with equal probability.

    The same type describes level ranges in dBFS (`--level-db`).
    """

    low: float
    high: float
    values: tuple[float, ...] = ()

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one value."""
        if self.values:
            return float(self.values[int(rng.integers(len(self.values)))])
        return float(rng.uniform(self.low, self.high)) if self.high > self.low else float(self.low)

    def describe(self, unit: str = "dB") -> str:
        """`-5 to 20 dB (uniform)` or `one of 0, 5, 10 dB`."""
        if self.values:
            return "one of " + ", ".join(f"{v:g}" for v in self.values) + f" {unit}"
        return f"{self.low:g} to {self.high:g} {unit} (uniform)"


def parse_snr_spec(text: str, quantity: str = "SNR") -> SnrSpec:
    """Parse `LO:HI` (uniform, `LO <= HI`) or `V[,V...]` (choose from the list), values in dB.

    `quantity` names what is parsed in error messages (`SNR`, `level`).

    Raises:
        DlspError: for anything else, empty ranges and non-finite values.
    """
    text = str(text).strip()
    match = _RANGE.match(text)
    if match:
        low, high = float(match.group(1)), float(match.group(2))
        _check_finite(quantity, text, low, high)
        if low > high:
            raise DlspError(f"{quantity} range {text} is empty: low must not exceed high")
        return SnrSpec(low, high)
    parts = [p.strip() for p in text.split(",")]
    if not text or not all(re.fullmatch(_NUMBER, p) for p in parts):
        raise DlspError(f"bad {quantity} specification {text!r}: use LO:HI (e.g. -5:20) or a list V,V,... "
                        "(e.g. 0,5,10)")
    values = tuple(float(p) for p in parts)
    _check_finite(quantity, text, *values)
    return SnrSpec(min(values), max(values), values)


def fit_noise(
    noise: np.ndarray, length: int, rng: np.random.Generator, crossfade: int = DEFAULT_CROSSFADE
) -> np.ndarray:
    """Crop or loop `noise` to `length` samples at a random offset.

    Longer noise gets a random crop. Shorter noise is repeated with each join crossfaded (equal power, since
    the end and the start of a noise are uncorrelated) and then cropped at a random offset, so the joins do
    not always fall at the same places.

    Shape:
        `(..., time) -> (..., length)`, float32.
    """
    noise = np.asarray(noise, dtype=np.float32)
    if length <= 0:
        raise DlspError(f"cannot fit noise to {length} samples")
    n = noise.shape[-1]
    if n == 0:
        raise DlspError("noise is empty (zero samples)")
    if n >= length:
        start = int(rng.integers(0, n - length + 1))
        return np.ascontiguousarray(noise[..., start:start + length])
    looped = _loop(noise, length, min(crossfade, n // 4))
    period = looped.shape[-1] - length
    start = int(rng.integers(0, period + 1))
    return np.ascontiguousarray(looped[..., start:start + length])


def mix_at_snr(
    clean: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator | None = None,
    peak_limit: float = 0.99,
    level_db: float | None = None,
) -> MixResult:
    """Add `noise` to `clean` at exactly `snr_db`.

    Args:
        clean: speech, `(time,)` or `(channels, time)`.
        noise: noise of any length with the same layout; fitted to the clean length with `fit_noise`.
        snr_db: target SNR in dB.
        rng: for the noise crop; a fresh unseeded generator when `None`.
        peak_limit: if any of the three outputs would peak above this, all three are scaled down together
            (the SNR is unchanged) and `gain` records the factor. Guarding all three keeps every file that is
            written from the result clip-free, not just the mixture.
        level_db: optionally scale the mixture so its RMS is this many dBFS (before the peak guard); `None`
            keeps the clean signal's own level.

    Shape:
        clean `(time,)` or `(channels, time)`; noise `(time',)` or `(channels, time')`; outputs like clean.

    Raises:
        DlspError: silent clean or noise, a non-finite SNR or level, or layouts that do not match.
    """
    clean = np.asarray(clean, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    _check_layout(clean, noise)
    if not math.isfinite(snr_db):
        raise DlspError(f"SNR must be a finite number of dB, got {snr_db}")
    if level_db is not None and not math.isfinite(level_db):
        raise DlspError(f"level must be a finite number of dBFS, got {level_db}")
    if not peak_limit > 0:
        raise DlspError(f"peak limit must be positive, got {peak_limit}")
    if is_silent(clean):
        raise DlspError("clean signal is silent (peak below -90 dBFS), SNR is undefined")
    if is_silent(noise):
        raise DlspError("noise is silent (peak below -90 dBFS), SNR is undefined")
    rng = rng if rng is not None else np.random.default_rng()
    fitted = fit_noise(noise, clean.shape[-1], rng).astype(np.float64)
    if is_silent(fitted):
        raise DlspError("the noise crop is silent (peak below -90 dBFS), SNR is undefined")

    clean64 = clean.astype(np.float64)
    noise_scale = math.sqrt(_energy(clean64) / (_energy(fitted) * 10 ** (snr_db / 10)))
    scaled_noise = fitted * noise_scale
    gain = 1.0
    if level_db is not None:
        rms = math.sqrt(np.mean((clean64 + scaled_noise) ** 2))
        gain = 10 ** (level_db / 20) / rms
    peak = gain * max(_peak(clean64), _peak(scaled_noise), _peak(clean64 + scaled_noise))
    if peak > peak_limit:
        # A hair under the limit so float32 rounding cannot push a sample back over it.
        gain *= peak_limit / peak * (1 - 1e-6)
    clean_out = (clean64 * gain).astype(np.float32)
    noise_out = (scaled_noise * gain).astype(np.float32)
    return MixResult(clean_out + noise_out, clean_out, noise_out, float(snr_db), float(gain))


def crop_or_pad(audio: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Random crop of longer audio (the loudest sample's neighbourhood if the crop is silent), or zero-padding
    of shorter audio at a random position.

    Shape:
        `(time,) -> (length,)`.
    """
    n = audio.shape[-1]
    if n <= length:
        out = np.zeros(length, dtype=np.float32)
        start = int(rng.integers(0, length - n + 1))
        out[start:start + n] = audio
        return out
    start = int(rng.integers(0, n - length + 1))
    if is_silent(audio[start:start + length]):
        start = min(max(0, int(np.argmax(np.abs(audio))) - length // 2), n - length)
    return audio[start:start + length].copy()


def measure_snr(clean: np.ndarray, noise: np.ndarray) -> float:
    """`10 * log10(sum(clean**2) / sum(noise**2))` in dB, computed in float64."""
    noise_energy = _energy(np.asarray(noise, dtype=np.float64))
    if noise_energy == 0:
        return math.inf
    return 10 * math.log10(_energy(np.asarray(clean, dtype=np.float64)) / noise_energy)


def _loop(noise: np.ndarray, length: int, fade: int) -> np.ndarray:
    """Repeat `noise` with crossfaded joins until at least `length + period` samples, `period = n - fade`."""
    n = noise.shape[-1]
    period = n - fade
    copies = math.ceil((length + period) / period)
    out = np.zeros((*noise.shape[:-1], copies * period + fade), dtype=np.float64)
    first = noise.astype(np.float64)  # copy 0 starts the buffer and needs no fade-in
    later = first.copy()
    if fade:
        ramp = (np.arange(fade) + 0.5) / fade * (np.pi / 2)
        first[..., n - fade:] *= np.cos(ramp)
        later[..., :fade] *= np.sin(ramp)
        later[..., n - fade:] *= np.cos(ramp)
    for k in range(copies):
        out[..., k * period:k * period + n] += first if k == 0 else later
    return out[..., :length + period].astype(np.float32)


def _check_layout(clean: np.ndarray, noise: np.ndarray) -> None:
    for name, audio in (("clean", clean), ("noise", noise)):
        if audio.ndim not in (1, 2):
            raise DlspError(f"{name} audio must be (time,) or (channels, time), got shape {audio.shape}")
        if audio.shape[-1] == 0:
            raise DlspError(f"{name} audio is empty (zero samples)")
        if not np.all(np.isfinite(audio)):
            raise DlspError(f"{name} audio contains NaN or Inf samples")
    if clean.ndim != noise.ndim or clean.shape[:-1] != noise.shape[:-1]:
        raise DlspError(f"clean shape {clean.shape} and noise shape {noise.shape} differ in channels")


def _check_finite(quantity: str, text: str, *values: float) -> None:
    if not all(math.isfinite(v) for v in values):
        raise DlspError(f"bad {quantity} specification {text!r}: values must be finite")


def _energy(audio: np.ndarray) -> float:
    return float(np.sum(audio * audio))


def _peak(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio)))

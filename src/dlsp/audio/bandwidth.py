"""Effective bandwidth of a recording, and band-limiting to it.

A file's sample rate says nothing of its content: an 8 kHz recording resampled to 16 kHz (FSDD, a telephone call,
an upsampled podcast) has nothing above 4 kHz. Mixed with wideband noise and used as a training target, it teaches
a wideband denoiser that everything above 4 kHz is noise. `effective_bandwidth` finds where the content stops: the
highest frequency whose long-term power is within `floor_db` of the strongest. Real wideband speech stays within
about 40-65 dB of its peak up to the Nyquist frequency (speechocean762, Arabic Speech Commands), while a resampled
8 kHz file drops more than 100 dB above 4 kHz, so 80 dB separates them with a wide margin either way.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

FLOOR_DB = 80.0
# A recording whose content stops below this fraction of the Nyquist frequency counts as narrowband.
NARROWBAND_FRACTION = 0.9


def effective_bandwidth(audio: np.ndarray, sample_rate: int, floor_db: float = FLOOR_DB) -> float:
    """The highest frequency in Hz whose long-term power (Welch, 512-point Blackman-Harris segments at 16 kHz,
    scaled for the rate) is within `floor_db` of the strongest frequency's; 0 for digital silence.

    Shape: `(time,)` or `(channels, time)` (channels pooled).
    """
    x = np.asarray(audio, dtype=np.float64)
    x = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x[None]
    nperseg = min(x.shape[-1], max(64, round(512 * sample_rate / 16000)))
    # Blackman-Harris: sidelobes 92 dB down, so a cliff in the spectrum does not leak past the 80 dB floor.
    freqs, power = signal.welch(x, sample_rate, window="blackmanharris", nperseg=nperseg)
    power = power.mean(axis=0)
    peak = float(power.max())
    if peak <= 0:
        return 0.0
    above = np.nonzero(power >= peak * 10 ** (-floor_db / 10))[0]
    return float(freqs[above[-1]])


def is_narrowband(audio: np.ndarray, sample_rate: int, fraction: float = NARROWBAND_FRACTION) -> bool:
    """Whether the content of `audio` stops below `fraction` of the Nyquist frequency."""
    return effective_bandwidth(audio, sample_rate) < fraction * sample_rate / 2


def band_limit(audio: np.ndarray, sample_rate: int, cutoff_hz: float, transition_hz: float = 250.0) -> np.ndarray:
    """`audio` low-passed at `cutoff_hz`: a zero-phase FFT filter that passes below `cutoff_hz - transition_hz`,
    stops above `cutoff_hz` and falls along a raised cosine between (no delay, no ringing worth the name).

    Shape: `(..., time) -> (..., time)`, float32.
    """
    x = np.asarray(audio, dtype=np.float32)
    n = x.shape[-1]
    if cutoff_hz >= sample_rate / 2:
        return x.copy()
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    start = max(0.0, cutoff_hz - transition_hz)
    ramp = np.clip((freqs - start) / max(cutoff_hz - start, 1e-9), 0.0, 1.0)
    gain = 0.5 * (1.0 + np.cos(np.pi * ramp))
    return np.fft.irfft(np.fft.rfft(x, axis=-1) * gain, n=n, axis=-1).astype(np.float32)

"""Simulated rooms for reverberant training speech: room impulse responses from pyroomacoustics' image-source
model, and the split of a reverberant utterance into what a listener hears and what a denoiser should give back.

The target of a reverberant utterance is its *early* part: the direct sound and the reflections of the first
`EARLY_MS` milliseconds, which the ear fuses with the direct sound (they help intelligibility), without the late
tail (which smears syllables). Asking a denoiser for the dry signal instead would ask it to undo the room's
colouring too, which a mask on the noisy magnitude cannot do; asking for the full reverberant signal would teach it
to keep the tail. This is the target of the DNS Challenge's reverberant training data.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

EARLY_MS = 50.0
RT60_RANGE = (0.2, 0.9)  # seconds: small furnished rooms to halls
ROOM_MIN = (3.0, 3.0, 2.4)  # metres
ROOM_MAX = (10.0, 8.0, 4.0)


def simulate_rir(rng: np.random.Generator, sample_rate: int,
                 rt60_range: tuple[float, float] = RT60_RANGE) -> np.ndarray:
    """One room impulse response: a shoebox room of random size and reverberation time (Sabine's formula gives the
    wall absorption), source and microphone at random places at least 0.5 m from every wall. Normalised so its
    direct path (the strongest tap) is 1 and starts at sample 0.

    Shape: `() -> (taps,)`, float32.
    """
    import pyroomacoustics as pra

    dims = rng.uniform(ROOM_MIN, ROOM_MAX)
    rt60 = float(rng.uniform(*rt60_range))
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order)
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    direct = int(np.argmax(np.abs(rir)))
    rir = rir[direct:] / rir[direct]
    # Drop the silent end the simulator pads with (below -80 dB of the direct path).
    last = np.nonzero(np.abs(rir) > 1e-4)[0][-1]
    return rir[: last + 1].astype(np.float32)


def reverberate(speech: np.ndarray, rir: np.ndarray, sample_rate: int,
                early_ms: float = EARLY_MS) -> tuple[np.ndarray, np.ndarray]:
    """`(reverberant, early)`: `speech` through the whole `rir`, and through its first `early_ms` milliseconds
    (the training target), both cut to the length of `speech` and aligned with it (the direct path is at 0).

    Shape: `(time,) -> (time,), (time,)`, float32.
    """
    speech = np.asarray(speech, dtype=np.float32)
    n = speech.shape[-1]
    early_taps = max(1, round(early_ms * sample_rate / 1000))
    wet = signal.fftconvolve(speech, rir)[:n]
    early = signal.fftconvolve(speech, rir[:early_taps])[:n]
    return wet.astype(np.float32), early.astype(np.float32)

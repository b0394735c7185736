"""Synthetic speech for dlsp's default data: made here and never downloaded.

Speech comes from a source-filter model. A Rosenberg glottal pulse train follows a pitch contour (phrase
declination, pitch accents, slow wander, per-period jitter and shimmer); aspiration noise makes breathy
voices; frication noise and short bursts make fricatives and plosives. Five formants move between vowel
targets (scaled by the speaker's vocal-tract length) and act as a cascade of resonators, applied frame by
frame with overlap-add; lip radiation is a first difference. Speakers differ in pitch range, vocal-tract
length, breathiness, speaking rate and a small individual formant pattern. Noises are in `dlsp.audio.noises`,
the corpus on disk in `dlsp.data.synthetic_corpus`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from dlsp.errors import DlspError

MIN_SAMPLE_RATE = 8000

# Vowel targets of an adult male vocal tract in Hz (F1-F3: Peterson & Barney 1952 means; F4, F5 typical).
_VOWELS = np.array([
    [270, 2290, 3010, 3500, 4300], [390, 1990, 2550, 3500, 4300], [530, 1840, 2480, 3500, 4300],
    [660, 1720, 2410, 3500, 4300], [730, 1090, 2440, 3400, 4200], [570, 840, 2410, 3300, 4200],
    [440, 1020, 2240, 3300, 4200], [300, 870, 2240, 3300, 4200], [640, 1190, 2390, 3400, 4200],
    [490, 1350, 1690, 3300, 4200],
], dtype=float)
_SCHWA = np.array([500, 1500, 2500, 3500, 4300], dtype=float)
_NASAL = np.array([250, 1100, 2300, 3300, 4200], dtype=float)
_BANDWIDTHS = np.array([70, 90, 130, 200, 280], dtype=float)
# F2 loci of plosives (None: pinch towards the next vowel's F2, as velars do).
_LOCI = {"p": 800.0, "b": 800.0, "t": 1750.0, "d": 1750.0, "k": None, "g": None}
# Noise shapes (centre Hz, bandwidth Hz, gain) of fricatives and plosive bursts.
_FRICATIVES = {"s": (5800.0, 1800.0, 0.5), "sh": (3000.0, 1200.0, 0.45), "f": (5000.0, 6000.0, 0.15)}
_BURSTS = {"p": (1000.0, 2500.0, 0.45), "t": (4500.0, 3000.0, 0.7), "k": (2000.0, 900.0, 0.65)}
_ONSETS = ("", "", "s", "sh", "f", "h", "p", "t", "k", "b", "d", "g", "m", "n")
_CODAS = ("", "", "", "", "", "s", "t", "k", "n", "m")
_CONTROL_RATE = 1000  # Hz: articulation is planned on a 1 ms grid.
_NOMINAL_SYLLABLE = 0.22  # s: mean syllable length of the unscaled part durations below.
_JITTER, _SHIMMER = 0.008, 0.04
# Seed streams: make_speakers draws from stream 2; dlsp.data.synthetic_corpus gives every speech file
# a generator from stream 0 and every noise file one from stream 1.
_SPEAKER_STREAM = 2


@dataclass(frozen=True)
class SyntheticSpeaker:
    """A synthetic voice: pitch range (Hz), vocal-tract length as a formant scale (child > 1), breathiness
    (0 modal .. 0.5 very breathy) and speaking rate (syllables per second)."""

    name: str
    f0_low: float
    f0_high: float
    formant_scale: float
    breathiness: float
    rate: float


def make_speakers(n: int, seed: int = 0) -> list[SyntheticSpeaker]:
    """`n` speakers spread from low male-like voices (85-155 Hz) to child-like ones (250-400 Hz).

    Pitch and vocal-tract length rise together along the list (with seeded jitter); breathiness and speaking
    rate follow independent low-discrepancy sequences, so neighbouring speakers differ in more than pitch.
    """
    if n < 1:
        raise DlspError(f"need at least one speaker, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SPEAKER_STREAM,)))
    offsets = rng.random(3)
    jitter = rng.uniform(-0.25, 0.25, n)
    speakers = []
    for i in range(n):
        position = float(np.clip((i + jitter[i]) / (n - 1), 0.0, 1.0)) if n > 1 else 0.5
        tract = 0.75 * position + 0.25 * ((offsets[0] + i * 0.6180339887) % 1.0)
        breath, tempo = (offsets[1] + i * 0.4142135624) % 1.0, (offsets[2] + i * 0.7320508076) % 1.0
        speakers.append(_speaker_at(f"spk{i:0{max(2, len(str(n - 1)))}d}", position, tract, breath, tempo))
    return speakers


def random_speaker(rng: np.random.Generator, name: str) -> SyntheticSpeaker:
    """A speaker drawn at random from the range `make_speakers` spans (babble talkers, for instance)."""
    pitch = rng.random()
    return _speaker_at(name, pitch, float(np.clip(0.75 * pitch + 0.25 * rng.random(), 0, 1)), rng.random(),
                       rng.random())


def synth_utterance(speaker: SyntheticSpeaker, seconds: float, sample_rate: int = 16000,
                    rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One speech-like utterance of `speaker`, peak-normalised to -6..-3 dBFS.

    Args:
        rng: generator or seed; `None` means seed 0, so calls are reproducible unless told otherwise.

    Shape: `() -> (time,)` float32 with `time == round(seconds * sample_rate)`.
    """
    n = duration_samples(seconds, sample_rate)
    rng = np.random.default_rng(0 if rng is None else rng)
    controls = _plan_utterance(speaker, n / sample_rate, rng)
    speech = _render(speaker, controls, n, sample_rate, rng)
    speech *= 10 ** (rng.uniform(-6, -3) / 20) / max(float(np.max(np.abs(speech))), 1e-9)
    speech += rng.standard_normal(n, np.float32) * 10 ** (-75 / 20)  # a noise floor: pauses are not digital 0
    return speech.astype(np.float32)


def duration_samples(seconds: float, sample_rate: int) -> int:
    """`round(seconds * sample_rate)`, refusing rates below `MIN_SAMPLE_RATE` and non-positive durations."""
    if not sample_rate >= MIN_SAMPLE_RATE:
        raise DlspError(f"sample rate must be at least {MIN_SAMPLE_RATE} Hz, got {sample_rate}")
    n = round(seconds * sample_rate) if np.isfinite(seconds) else 0
    if n < 1:
        raise DlspError(f"duration must be positive, got {seconds} s")
    return n


# --- speakers ----------------------------------------------------------------------------------------------


def _speaker_at(name: str, pitch: float, tract: float, breath: float, tempo: float) -> SyntheticSpeaker:
    """A speaker from positions in [0, 1] along pitch, vocal-tract length, breathiness and rate."""
    pitch = float(pitch)
    return SyntheticSpeaker(name, round(85 * (250 / 85) ** pitch, 1), round(155 * (400 / 155) ** pitch, 1),
                            round(0.85 + 0.35 * float(tract), 3), round(0.05 + 0.35 * float(breath), 3),
                            round(3.5 + 2.0 * float(tempo), 2))


@dataclass(frozen=True)
class _VoiceTraits:
    """What makes a voice individual beyond the speaker's fields; fixed by those fields."""

    formant_ratios: np.ndarray  # (5,) multiplies the formants of every vowel
    bandwidth_scale: float
    open_quotient: float  # fraction of the glottal period the glottis is open
    tilt: float  # dB per octave added to the spectrum
    notch_hz: float  # the piriform fossa's antiresonance
    notch_depth: float  # 0..1
    peak_hz: float  # a fixed resonance of the lower vocal tract
    peak_gain: float  # 0..1


def _voice_traits(speaker: SyntheticSpeaker) -> _VoiceTraits:
    fields = (speaker.name, *(float(x) for x in (speaker.f0_low, speaker.f0_high, speaker.formant_scale,
                                                 speaker.breathiness, speaker.rate)))
    rng = np.random.default_rng(zlib.crc32(repr(fields).encode()))
    return _VoiceTraits(
        formant_ratios=1 + np.clip(rng.normal(0, 0.05, 5), -0.1, 0.1),
        bandwidth_scale=float(rng.uniform(0.8, 1.25)),
        open_quotient=0.5 + 0.5 * speaker.breathiness + float(rng.uniform(0, 0.1)),
        tilt=float(rng.uniform(-3.0, 2.0) - 4 * speaker.breathiness),
        notch_hz=float(rng.uniform(3800, 5200) * speaker.formant_scale),
        notch_depth=float(rng.uniform(0.6, 0.9)),
        peak_hz=float(rng.uniform(1800, 3600) * speaker.formant_scale),
        peak_gain=float(rng.uniform(0.5, 1.5)),
    )


def _voice_colour(traits: _VoiceTraits, sr: int, nfft: int) -> np.ndarray:
    """The voice's fixed spectral colouring: tilt, antiresonance and resonance.

    Shape: `() -> (nfft // 2 + 1,)`.
    """
    freqs = np.fft.rfftfreq(nfft, 1 / sr)
    colour = ((freqs + 500) / 1500) ** (traits.tilt / 6.02)
    colour *= 1 - traits.notch_depth * np.exp(-0.5 * ((freqs - traits.notch_hz) / 350) ** 2)
    colour *= 1 + traits.peak_gain * np.exp(-0.5 * ((freqs - traits.peak_hz) / 400) ** 2)
    return colour.astype(np.float32)


# --- speech: articulation plan on a 1 ms grid --------------------------------------------------------------


@dataclass
class _Controls:
    voice: np.ndarray  # (steps,) glottal source gain
    aspiration: np.ndarray  # (steps,) noise gain at the glottis (h, plosive release)
    frication: np.ndarray  # (steps,) noise gain at a constriction (fricatives, bursts)
    fric_shape: np.ndarray  # (steps, 2) centre and bandwidth of the frication noise, Hz
    formants: np.ndarray  # (steps, 5) Hz
    bandwidths: np.ndarray  # (steps, 5) Hz
    log_f0: np.ndarray  # (steps,)


def _syllables(speaker: SyntheticSpeaker, rng: np.random.Generator, span: float) -> list[list[tuple]]:
    """Syllables as lists of parts `(kind, seconds, detail)` filling at most `span` seconds."""
    scale = 1 / (speaker.rate * _NOMINAL_SYLLABLE)
    syllables, total = [], 0.0
    while True:
        stressed = rng.random() < 0.35
        parts = []
        if total > 0 and rng.random() < 0.22:
            parts.append(("pause", rng.uniform(0.06, 0.2) * (2.0 if rng.random() < 0.3 else 1.0), None))
        parts += _consonant(rng.choice(_ONSETS), rng)
        parts.append(("vowel", rng.uniform(0.08, 0.14) * (1.35 if stressed else 1.0), (int(rng.integers(10)),
                                                                                          stressed)))
        parts += _consonant(rng.choice(_CODAS), rng)
        parts = [(kind, d * (1.0 if kind == "pause" else scale), detail) for kind, d, detail in parts]
        length = sum(d for _, d, _ in parts)
        if syllables and total + length > span:
            return syllables
        syllables.append(parts)
        total += length
        if total > span:  # a single syllable longer than the utterance: squeeze it in
            return [[(kind, d * span / total, detail) for kind, d, detail in parts]]


def _consonant(name: str, rng: np.random.Generator) -> list[tuple]:
    if name in _FRICATIVES:
        return [("fric", rng.uniform(0.06, 0.11), name)]
    if name == "h":
        return [("asp", rng.uniform(0.04, 0.07), name)]
    if name in ("m", "n"):
        return [("nasal", rng.uniform(0.04, 0.08), name)]
    if name in ("p", "t", "k"):
        return [("closure", rng.uniform(0.04, 0.07), name), ("burst", rng.uniform(0.008, 0.015), name),
                ("asp", rng.uniform(0.02, 0.045), name)]
    if name in ("b", "d", "g"):
        return [("voicebar", rng.uniform(0.03, 0.06), name), ("burst", 0.006, "ptk"["bdg".index(name)])]
    return []


def _plan_utterance(speaker: SyntheticSpeaker, seconds: float, rng: np.random.Generator) -> _Controls:
    steps = int(np.ceil(seconds * _CONTROL_RATE)) + 1
    lead, tail = rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.15)
    if lead + tail > 0.4 * seconds:  # very short utterances: keep most of the time for speech
        lead, tail = 0.2 * seconds * lead / (lead + tail), 0.2 * seconds * tail / (lead + tail)
    traits = _voice_traits(speaker)
    tract = speaker.formant_scale * traits.formant_ratios
    bandwidths = _BANDWIDTHS * traits.bandwidth_scale * np.array([1 + 1.5 * speaker.breathiness, 1, 1, 1, 1])
    voice, aspiration, frication = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    fric_shape = np.full((steps, 2), np.nan)
    targets: list[tuple[float, np.ndarray, np.ndarray]] = []
    accents: list[tuple[float, float]] = []
    phrase_starts = [lead]
    t = lead
    for parts in _syllables(speaker, rng, seconds - lead - tail):
        vowel = next(detail for kind, _, detail in parts if kind == "vowel")
        formants = _VOWELS[vowel[0]] if vowel[1] else 0.6 * _VOWELS[vowel[0]] + 0.4 * _SCHWA
        formants = formants * tract * (1 + rng.normal(0, 0.03, 5))
        loudness = 10 ** ((rng.normal(0, 1.5) + (3.0 if vowel[1] else 0.0)) / 20)
        for kind, duration, detail in parts:
            a, b = round(t * _CONTROL_RATE), round((t + duration) * _CONTROL_RATE)
            if kind == "pause" and duration > 0.25:
                phrase_starts.append(t + duration)
            elif kind == "vowel":
                voice[a:b] = loudness * np.sin(np.pi * (np.arange(b - a) + 0.5) / max(b - a, 1)) ** 0.5
                targets += [(t + at * duration, formants, bandwidths) for at in (0.25, 0.75)]
                if detail[1]:
                    accents.append((t + 0.4 * duration, rng.uniform(0.15, 0.35)))
            elif kind == "nasal":
                voice[a:b] = 0.3 * loudness
                targets.append((t + duration / 2, _NASAL * tract, bandwidths * 1.8))
            elif kind == "fric":
                frication[a:b] = _FRICATIVES[detail][2] * loudness
                fric_shape[a:b] = _FRICATIVES[detail][:2]
            elif kind == "burst":
                frication[a:b] = _BURSTS[detail][2] * loudness * np.exp(-np.arange(b - a) / 6.0)
                fric_shape[a:b] = _BURSTS[detail][:2]
            elif kind == "asp":
                aspiration[a:b] = 0.35 * loudness
            if kind in ("closure", "voicebar"):
                voice[a:b] = 0.05 * loudness if kind == "voicebar" else 0.0
                locus = _LOCI[detail] * speaker.formant_scale if _LOCI[detail] else formants[1] * 1.1
                edge = formants.copy()
                edge[0], edge[1] = 250 * speaker.formant_scale, 0.5 * (formants[1] + locus)
                targets.append((t + duration, edge, bandwidths))
            t += duration
    control_t = np.arange(steps) / _CONTROL_RATE
    times = np.array([target[0] for target in targets])
    formant_track, bandwidth_track = (
        np.stack([np.interp(control_t, times, [x[i][k] for x in targets]) for k in range(5)], axis=1)
        for i in (1, 2))
    return _Controls(
        voice=_smooth(voice, 15), aspiration=_smooth(aspiration, 8), frication=_smooth(frication, 3),
        fric_shape=_fill_gaps(fric_shape), formants=formant_track, bandwidths=bandwidth_track,
        log_f0=_pitch_contour(speaker, control_t, phrase_starts, accents, rng),
    )


def _pitch_contour(speaker: SyntheticSpeaker, control_t: np.ndarray, phrase_starts: list[float],
                   accents: list[tuple[float, float]], rng: np.random.Generator) -> np.ndarray:
    """log f0 on the control grid: declination per phrase, accents on stressed vowels and slow wander."""
    position = np.zeros_like(control_t)
    bounds = [*phrase_starts, control_t[-1] + 1e-3]
    for start, end in pairwise(bounds):
        inside = (control_t >= start) & (control_t < end) if start > bounds[0] else control_t < end
        top, bottom = rng.uniform(0.5, 0.8), rng.uniform(0.05, 0.3)
        position[inside] = np.interp(control_t[inside], [start, end], [top, bottom])
    for centre, height in accents:
        position += height * np.exp(-0.5 * ((control_t - centre) / 0.08) ** 2)
    wander = rng.normal(0, 1, len(control_t) // 50 + 2)
    position += 0.08 * np.interp(control_t, np.arange(len(wander)) * 0.05, wander)
    position = np.clip(position, 0.0, 1.0)
    return np.log(speaker.f0_low) + position * np.log(speaker.f0_high / speaker.f0_low)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    window = np.hanning(width + 2)[1:-1]
    return np.convolve(x, window / window.sum(), mode="same")


def _fill_gaps(shape: np.ndarray) -> np.ndarray:
    """Carry the last frication shape forward (and the first one back) over steps without frication."""
    known = ~np.isnan(shape[:, 0])
    if not known.any():
        return np.tile([4000.0, 2000.0], (len(shape), 1))
    index = np.maximum.accumulate(np.where(known, np.arange(len(shape)), 0))
    index[: np.argmax(known)] = np.argmax(known)
    return shape[index]


# --- speech: sources and time-varying filtering ------------------------------------------------------------


def _render(speaker: SyntheticSpeaker, c: _Controls, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t, control_t = np.arange(n) / sr, np.arange(len(c.voice)) / _CONTROL_RATE
    voice, aspiration, frication_gain = (np.interp(t, control_t, x).astype(np.float32)
                                         for x in (c.voice, c.aspiration, c.frication))
    traits = _voice_traits(speaker)
    pulse, shimmer = _glottal_pulses(np.exp(np.interp(t, control_t, c.log_f0)), sr, traits.open_quotient, rng)
    breath = speaker.breathiness * voice * (0.3 + pulse) + aspiration
    glottal = voice * shimmer * pulse + 0.08 * breath * rng.standard_normal(n, np.float32)
    frication = frication_gain * rng.standard_normal(n, np.float32)

    hop = 2 ** round(np.log2(0.016 * sr))
    nfft = 2 ** int(np.ceil(np.log2(2 * hop + 0.03 * sr)))  # room for the resonators' ringing
    frame_t = np.arange((n - 1) // hop + 2) * hop / sr
    formants, bandwidths, fric_shape = (np.stack([np.interp(frame_t, control_t, x) for x in track.T], axis=1)
                                        for track in (c.formants, c.bandwidths, c.fric_shape))
    colour = _voice_colour(traits, sr, nfft)
    voiced = _filter_frames(glottal, hop, nfft,
                            lambda i: _tract_response(formants[i], bandwidths[i], sr, nfft) * colour)
    noisy = _filter_frames(frication, hop, nfft,
                           lambda i: _frication_response(fric_shape[i, 0], fric_shape[i, 1], sr, nfft))
    # Fix the frication level relative to the voiced level, whatever the resonators' gains were.
    voiced /= np.sqrt(np.sum(voiced**2) / max(np.sum(voice**2), 1e-9)) + 1e-12
    noisy /= np.sqrt(np.sum(noisy**2) / max(np.sum(frication_gain**2), 1e-9)) + 1e-12
    return voiced + 0.3 * noisy


def _glottal_pulses(f0: np.ndarray, sr: int, open_quotient: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg pulses following `f0` with jitter, and the shimmer gain to apply to them.

    Shape: `(time,) -> (time,), (time,)`.
    """
    # Jitter and shimmer change once per glottal period: index the random draws by the period number.
    period = (np.cumsum(f0) / sr).astype(np.int64)
    phase = np.cumsum(f0 * (1 + rng.normal(0, _JITTER, period[-1] + 2)[period])) / sr
    period = phase.astype(np.int64)
    shimmer = 1 + rng.normal(0, _SHIMMER, period[-1] + 2).astype(np.float32)[period]
    phase = (phase - period).astype(np.float32)
    rise, fall = 0.7 * open_quotient, 0.3 * open_quotient
    opening = 0.5 * (1 - np.cos(np.float32(np.pi / rise) * phase))
    closing = np.cos(np.float32(0.5 * np.pi / fall) * (phase - np.float32(rise)))
    pulse = np.where(phase < rise, opening, np.where(phase < rise + fall, closing, 0)).astype(np.float32)
    return pulse, shimmer


def _tract_response(formants: np.ndarray, bandwidths: np.ndarray, sr: int, nfft: int) -> np.ndarray:
    """Cascade of unit-DC-gain resonators (Klatt) times lip radiation.

    Shape: `(frames, formants) -> (frames, nfft // 2 + 1)`.
    """
    # A formant beyond Nyquist gets pole radius 0, which makes its resonator exactly 1.
    radius = np.where(formants < 0.45 * sr, np.exp(-np.pi * bandwidths / sr), 0.0)
    return _all_pole_response(2 * radius * np.cos(2 * np.pi * formants / sr), radius**2, nfft)


def _frication_response(centre: np.ndarray, bandwidth: np.ndarray, sr: int, nfft: int) -> np.ndarray:
    """One broad resonance with a high-pass tilt, unit RMS gain per frame.

    Shape: `(frames,) -> (frames, nfft // 2 + 1)`.
    """
    radius = np.exp(-np.pi * np.minimum(bandwidth, 0.4 * sr) / sr)[:, None]
    cosine = np.cos(2 * np.pi * np.minimum(centre, 0.42 * sr) / sr)[:, None]
    response = _all_pole_response(2 * radius * cosine, radius**2, nfft)
    response *= 1 - np.exp(-2j * np.pi * np.fft.rfftfreq(nfft)).astype(np.complex64)  # steeper low cut
    return response / np.sqrt(np.mean(np.abs(response) ** 2, axis=1, keepdims=True))


def _all_pole_response(b1: np.ndarray, b2: np.ndarray, nfft: int) -> np.ndarray:
    """Frequency response of cascaded sections `1 / (1 - b1 z^-1 + b2 z^-2)`, each scaled to unit DC gain,
    times a first difference (lip radiation).

    The sections are multiplied out into one polynomial per frame, whose FFT is the denominator on all bins at
    once. Shape: `(frames, sections) -> (frames, nfft // 2 + 1)`.
    """
    polynomial = np.ones((len(b1), 1))
    for k in range(b1.shape[1]):
        grown = np.zeros((len(b1), polynomial.shape[1] + 2))
        grown[:, :-2] += polynomial
        grown[:, 1:-1] -= b1[:, k:k + 1] * polynomial
        grown[:, 2:] += b2[:, k:k + 1] * polynomial
        polynomial = grown
    # float64 here: near a narrow resonance the polynomial's value is a small difference of large terms.
    response = polynomial.sum(axis=1, keepdims=True) / scipy.fft.rfft(polynomial, nfft, axis=1)
    return (response * (1 - np.exp(-2j * np.pi * np.fft.rfftfreq(nfft)))).astype(np.complex64)


def _filter_frames(x: np.ndarray, hop: int, nfft: int,
                   response: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Filter `x` with a time-varying filter: Hann frames of `2 * hop` centred every `hop` samples (the
    windows sum to one), each multiplied by `response(frame indices)` and overlap-added. Silent frames are
    skipped.

    Shape: `(time,) -> (time,)`; `response`: `(active frames,) -> (active frames, nfft // 2 + 1)`.
    """
    n = len(x)
    padded = np.concatenate([np.zeros(hop, np.float32), x.astype(np.float32), np.zeros(2 * hop, np.float32)])
    frames = sliding_window_view(padded, 2 * hop)[::hop][: (n - 1) // hop + 2]
    active = np.flatnonzero(np.any(frames != 0, axis=1))
    filtered = np.zeros((len(frames), nfft), np.float32)
    if len(active):
        spectra = scipy.fft.rfft(frames[active] * np.hanning(2 * hop + 1)[:-1].astype(np.float32), nfft)
        filtered[active] = scipy.fft.irfft(spectra * response(active), nfft)
    chunks = nfft // hop
    out = np.zeros((len(frames) + chunks - 1, hop))
    blocks = filtered.reshape(len(frames), chunks, hop)
    for chunk in range(chunks):
        out[chunk:chunk + len(frames)] += blocks[:, chunk]
    return out.reshape(-1)[hop:hop + n]

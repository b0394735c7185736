"""Do-no-harm checks for a speech denoiser: what it does to clean speech, to silence and to noise alone.

A denoiser that improves noisy speech may still damage clean speech (dulling the highs of wideband speech it
takes for noise), add sound to digital silence, or pass noise through when no speech is present. The checks:

- band levels: for each frequency band, `10 log10(output band energy / input band energy)` of clean speech, from
  the power spectrum of the whole signal (so a pure delay changes nothing); the median over utterances is kept.
- SI-SDR of the output against the (clean) input, median over utterances: how much the speech itself is altered.
- silence: the output peak in dBFS for an input of digital silence (`-inf` for exact zeros).
- noise alone: `10 log10(input energy / output energy)` for noise with no speech, median over the noises.

`transparency_checks` turns a report into PASS/FAIL verdicts with the thresholds below.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dlsp.errors import DlspError

DEFAULT_BANDS: tuple[tuple[float, float], ...] = ((0, 1000), (1000, 2000), (2000, 4000), (4000, 8000))
BAND_TOLERANCE_DB = 1.5
SILENCE_FLOOR_DBFS = -90.0
MIN_NOISE_ATTENUATION_DB = 10.0
SILENCE_SECONDS = 2.0
CHECK_UTTERANCES = 12


def held_out_clean_speech(data: str | os.PathLike[str], count: int = CHECK_UTTERANCES) -> list[Path]:
    """The clean speech of the do-no-harm check in a shared data folder: the first utterance (by name) of each of
    `count` held-out speechocean762 speakers (`dlsp.data.holdout`), three of each gender x age group, so no shipped
    model heard them. Speakers whose folder is missing are skipped."""
    from dlsp.data.holdout import SPEECHOCEAN_HELD_OUT

    root = Path(data) / "speech" / "speechocean762"
    chosen = [speaker for i, speaker in enumerate(SPEECHOCEAN_HELD_OUT) if i % 4 != 3]
    files = [sorted((root / speaker).glob("*.flac")) for speaker in chosen]
    return [found[0] for found in files if found][:count]


def band_level_changes(reference: np.ndarray, output: np.ndarray, sample_rate: int,
                       bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> list[float]:
    """Level change in dB of `output` against `reference` in each band `[low, high)` Hz (a band reaching the
    Nyquist frequency includes it): `10 log10(E_out / E_ref)` with band energies summed from the power spectrum of
    the whole signal. A band where both are silent gives 0; silent reference only, `+inf`; silent output, `-inf`.

    Shape: `(time,)` and `(time,)`.

    Raises:
        DlspError: signals of different lengths or not 1-D, or a band outside `[0, sample_rate / 2]`.
    """
    reference = np.asarray(reference, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if reference.ndim != 1 or reference.shape != output.shape or reference.size == 0:
        raise DlspError(f"band levels need two 1-D signals of one length, got shapes {reference.shape} and "
                        f"{output.shape}")
    nyquist = sample_rate / 2
    freqs = np.fft.rfftfreq(reference.size, 1.0 / sample_rate)
    ref_power = np.abs(np.fft.rfft(reference)) ** 2
    out_power = np.abs(np.fft.rfft(output)) ** 2
    changes = []
    for low, high in bands:
        if not 0 <= low < high <= nyquist:
            raise DlspError(f"band {low}-{high} Hz is not within 0-{nyquist:g} Hz")
        upper = (freqs <= high) if high >= nyquist else (freqs < high)
        mask = (freqs >= low) & upper
        ref_energy, out_energy = float(ref_power[mask].sum()), float(out_power[mask].sum())
        if ref_energy == 0 and out_energy == 0:
            changes.append(0.0)
        elif ref_energy == 0:
            changes.append(math.inf)
        elif out_energy == 0:
            changes.append(-math.inf)
        else:
            changes.append(10 * math.log10(out_energy / ref_energy))
    return changes


def transparency_report(denoise: Callable[[np.ndarray, int], np.ndarray], clean: list[np.ndarray],
                        noise: list[np.ndarray], sample_rate: int,
                        bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> dict:
    """Run `denoise(audio, sample_rate)` on clean speech, on `SILENCE_SECONDS` of digital silence and on each noise.

    Returns:
        `{"bands": [(low, high), ...], "band_change_db": median change per band, "si_sdr": median SI-SDR of
        output vs input, "silence_peak_dbfs": output peak for silent input (-inf for zeros),
        "noise_attenuation_db": median over `noise` (NaN without noise), plus the per-signal values
        "band_change_db_all" (one list per utterance), "si_sdr_all" and "noise_attenuation_db_all"}`. An output
        with NaN or Inf samples gives NaN values, which every check fails.
    """
    from dlsp.metrics.enhancement import si_sdr

    if not clean:
        raise DlspError("the transparency check needs at least one clean utterance")

    def run(audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        out = np.asarray(denoise(audio, sample_rate), dtype=np.float64)
        if out.shape != audio.shape:
            raise DlspError(f"the denoiser returned shape {out.shape} for input of shape {audio.shape}")
        return out

    changes, sdrs = [], []
    for speech in clean:
        out = run(speech)
        changes.append(band_level_changes(speech, out, sample_rate, bands))
        sdrs.append(float(si_sdr(speech, out)) if np.all(np.isfinite(out)) else math.nan)
    silent_out = run(np.zeros(int(SILENCE_SECONDS * sample_rate), np.float32))
    # NaN or Inf out of silence (a gain computed as 0/0) is a failure, not a quiet output: its peak is NaN.
    peak = float(np.max(np.abs(silent_out))) if np.all(np.isfinite(silent_out)) else math.nan
    attenuations = []
    for item in noise:
        out = run(item)
        in_energy = float(np.sum(np.asarray(item, dtype=np.float64) ** 2))
        out_energy = float(np.sum(out**2))
        if not math.isfinite(out_energy):
            attenuations.append(math.nan)
        else:
            attenuations.append(math.inf if out_energy == 0 else 10 * math.log10(in_energy / out_energy))
    return {
        "bands": [(float(low), float(high)) for low, high in bands],
        "band_change_db": [float(np.median(column)) for column in zip(*changes, strict=True)],
        "si_sdr": float(np.median(sdrs)),
        "silence_peak_dbfs": 20 * math.log10(peak) if peak > 0 else (-math.inf if peak == 0 else math.nan),
        "noise_attenuation_db": float(np.median(attenuations)) if attenuations else math.nan,
        "band_change_db_all": changes,
        "si_sdr_all": sdrs,
        "noise_attenuation_db_all": attenuations,
    }


def transparency_checks(report: dict, reference_si_sdr: float | None = None,
                        band_tolerance_db: float = BAND_TOLERANCE_DB, silence_floor_dbfs: float = SILENCE_FLOOR_DBFS,
                        min_noise_attenuation_db: float = MIN_NOISE_ATTENUATION_DB) -> dict[str, bool | None]:
    """PASS (True) / FAIL (False) per criterion of a `transparency_report`; None where it cannot be judged.

    - `bands`: every median band change within `+-band_tolerance_db`;
    - `si_sdr`: median SI-SDR at least `reference_si_sdr` (another method's on the same files; None without it);
    - `silence`: output peak for silent input below `silence_floor_dbfs` (digital zeros pass, NaN fails);
    - `noise`: median noise attenuation at least `min_noise_attenuation_db` (None when no noise was run).
    """
    noise = None if not report["noise_attenuation_db_all"] else report["noise_attenuation_db"]
    return {
        "bands": all(abs(change) <= band_tolerance_db for change in report["band_change_db"]),
        "si_sdr": None if reference_si_sdr is None else bool(report["si_sdr"] >= reference_si_sdr),
        "silence": bool(report["silence_peak_dbfs"] < silence_floor_dbfs),
        "noise": None if noise is None else bool(noise >= min_noise_attenuation_db),
    }

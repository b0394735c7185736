"""Speech-enhancement metrics: SNR, segmental SNR, SI-SDR, PESQ and STOI.

All functions take the clean `reference` first and the `estimate` (enhanced or degraded signal)
second, compute in float64, and require both to have the same shape: aligning signals is the caller's
choice (the `dlsp metrics` command trims lengths that differ by at most 1%). Every function accepts
batches `(..., time)` and returns an array of shape `(...)`; a 1-D input returns a float. PESQ and STOI
loop over a batch.

Errors a user can cause (different lengths, silent or empty reference, NaN samples, too little speech
for PESQ or STOI) raise `DlspError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np

from dlsp.errors import DlspError

OnError = Literal["raise", "nan"]
# pystoi needs 30 frames of 256 samples at 10 kHz, hop 128 (~0.4 s), of non-silent reference after dropping
# frames more than 40 dB below the loudest one.
STOI_MIN_SECONDS = 0.4


def snr(reference: np.ndarray, estimate: np.ndarray) -> float | np.ndarray:
    """Signal-to-noise ratio in dB, `10 log10(sum(ref**2) / sum((ref - est)**2))`, with no scaling.

    Identical signals give `+inf`; a silent estimate gives 0 dB.

    Shape:
        `(..., time)` and `(..., time)` -> float for 1-D input, else `(...)`.

    Raises:
        DlspError: different shapes, empty input, NaN/Inf samples, or a silent (all-zero) reference.
    """
    reference, estimate = _validated_pair(reference, estimate)
    signal_energy = np.sum(reference**2, axis=-1)
    error_energy = np.sum((reference - estimate) ** 2, axis=-1)
    return _as_output(_ratio_db(signal_energy, error_energy))


def segmental_snr(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    frame_seconds: float = 0.032,
    hop_seconds: float = 0.016,
    min_db: float = -10.0,
    max_db: float = 35.0,
    silence_db: float = 40.0,
) -> float | np.ndarray:
    """Segmental SNR in dB: the mean over frames of the per-frame SNR clamped to `[min_db, max_db]`.

    The clamping to [-10, 35] dB follows Hansen & Pellom (1998) and Loizou's composite measures: it
    stops near-silent frames (very negative SNR) and perfect frames (+inf) from dominating the mean.
    Choices made here: rectangular frames of 32 ms with a 16 ms hop (the trailing partial frame is
    dropped; a signal shorter than one frame is one frame), and reference frames whose energy lies more
    than `silence_db` below the loudest reference frame are skipped, since speech pauses carry no signal
    to measure. Identical signals therefore give exactly `max_db`.

    Shape:
        `(..., time)` and `(..., time)` -> float for 1-D input, else `(...)`.

    Raises:
        DlspError: as for `snr`, or non-positive frame/hop lengths or `min_db >= max_db`.
    """
    reference, estimate = _validated_pair(reference, estimate)
    frame = round(frame_seconds * sample_rate)
    hop = round(hop_seconds * sample_rate)
    if frame <= 0 or hop <= 0:
        raise DlspError(f"segmental SNR needs positive frame and hop lengths, got {frame} and {hop} samples")
    if not min_db < max_db:
        raise DlspError(f"segmental SNR needs min_db < max_db, got {min_db} and {max_db}")
    frame = min(frame, reference.shape[-1])
    ref_frames = np.lib.stride_tricks.sliding_window_view(reference, frame, axis=-1)[..., ::hop, :]
    err_frames = np.lib.stride_tricks.sliding_window_view(reference - estimate, frame, axis=-1)[..., ::hop, :]
    signal_energy = np.sum(ref_frames**2, axis=-1)  # (..., frames)
    error_energy = np.sum(err_frames**2, axis=-1)
    frame_db = np.clip(_ratio_db(signal_energy, error_energy), min_db, max_db)
    loudest = np.max(signal_energy, axis=-1, keepdims=True)
    # The loudest frame always passes (the reference is not silent), so every mean has at least one term.
    active = signal_energy > loudest * 10 ** (-silence_db / 10)
    # where(), not a product: a silent frame with zero error is 0/0 = NaN, and NaN * 0 is still NaN.
    return _as_output(np.sum(np.where(active, frame_db, 0.0), axis=-1) / np.sum(active, axis=-1))


def si_sdr(reference: np.ndarray, estimate: np.ndarray, zero_mean: bool = True) -> float | np.ndarray:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux, Wisdom, Erdogan & Hershey, ICASSP 2019).

    The reference is scaled by `alpha = <est, ref> / ||ref||²` to best match the estimate; SI-SDR is
    `10 log10(||alpha ref||² / ||est - alpha ref||²)`. Scaling the estimate by any positive factor leaves it
    unchanged. With `zero_mean` both signals have their mean removed first, as in the paper's code. Identical
    signals give `+inf`; an estimate orthogonal to the reference (or silent) gives `-inf`.

    Shape:
        `(..., time)` and `(..., time)` -> float for 1-D input, else `(...)`.

    Raises:
        DlspError: as for `snr` (a constant reference counts as silent when `zero_mean` is set).
    """
    reference, estimate = _validated_pair(reference, estimate, check_silent=not zero_mean)
    if zero_mean:
        reference = reference - reference.mean(axis=-1, keepdims=True)
        estimate = estimate - estimate.mean(axis=-1, keepdims=True)
        _check_not_silent(reference, "reference is constant (silent once its mean is removed)")
    projection = np.sum(estimate * reference, axis=-1, keepdims=True)
    target = projection / np.sum(reference**2, axis=-1, keepdims=True) * reference
    target_energy = np.sum(target**2, axis=-1)
    distortion_energy = np.sum((estimate - target) ** 2, axis=-1)
    ratio = _ratio_db(target_energy, distortion_energy)
    return _as_output(np.where(target_energy == 0, -np.inf, ratio))


def pesq_score(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    mode: Literal["wb", "nb"] | None = None,
    on_error: OnError = "raise",
) -> float | np.ndarray:
    """PESQ (ITU-T P.862.2 wideband or P.862.1-mapped narrowband) MOS-LQO via the `pesq` package.

    PESQ is only defined at 8 and 16 kHz: audio at 16 kHz or more is scored at 16 kHz, lower rates at 8 kHz
    (resampled with soxr when needed). `mode=None` picks wideband at 16 kHz and narrowband at 8 kHz (see
    `pesq_mode_for`); `mode="wb"` below 16 kHz is refused rather than scoring upsampled narrowband audio.
    Identical signals score about 4.64 (wb) or 4.55 (nb); the floor is about 1.

    Args:
        on_error: `"raise"` turns PESQ's failures (shorter than 0.25 s, no utterances detected, silent
            estimate) into `DlspError`; `"nan"` returns NaN for those signals and warns once per call,
            for batch evaluation.

    Shape:
        `(..., time)` and `(..., time)` -> float for 1-D input, else `(...)`.
    """
    from pesq import pesq

    from dlsp.audio.io import resample

    reference, estimate = _validated_pair(reference, estimate)
    _check_on_error(on_error)
    mode = mode or pesq_mode_for(sample_rate)
    if mode not in ("wb", "nb"):
        raise DlspError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    if mode == "wb" and sample_rate < 16000:
        raise DlspError(f"wideband PESQ needs audio sampled at 16 kHz or more, got {sample_rate} Hz")
    pesq_rate = 16000 if sample_rate >= 16000 else 8000
    if sample_rate != pesq_rate:
        reference = resample(reference, sample_rate, pesq_rate).astype(np.float64)
        estimate = resample(estimate, sample_rate, pesq_rate).astype(np.float64)

    def score_one(ref: np.ndarray, est: np.ndarray) -> float:
        if not np.any(est):
            raise DlspError("estimate is silent, PESQ is undefined")
        try:
            return float(pesq(pesq_rate, ref, est, mode))
        except Exception as exc:  # pesq raises its own PesqError subclasses, or ValueError from NaN internals
            raise DlspError(f"PESQ failed: {_pesq_reason(exc)}") from None

    return _map_pairs(score_one, reference, estimate, on_error, "PESQ")


def pesq_mode_for(sample_rate: int) -> Literal["wb", "nb"]:
    """The PESQ mode `pesq_score` uses by default: wideband from 16 kHz up, narrowband below."""
    return "wb" if sample_rate >= 16000 else "nb"


def stoi_score(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    extended: bool = False,
    on_error: OnError = "raise",
) -> float | np.ndarray:
    """STOI (Taal et al. 2011) or, with `extended`, ESTOI (Jensen & Taal 2016) via `pystoi`; 1 for identical.

    pystoi resamples to 10 kHz and drops reference frames more than 40 dB below the loudest; it needs
    about 0.4 s of remaining speech. Where pystoi would quietly return 1e-5 this raises instead.

    Args:
        on_error: `"raise"` (DlspError) or `"nan"` (NaN and one warning per call) when there is too
            little speech.

    Shape:
        `(..., time)` and `(..., time)` -> float for 1-D input, else `(...)`.
    """
    from pystoi import stoi

    reference, estimate = _validated_pair(reference, estimate)
    _check_on_error(on_error)
    name = "ESTOI" if extended else "STOI"

    def score_one(ref: np.ndarray, est: np.ndarray) -> float:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(stoi(ref, est, sample_rate, extended=extended))
        if any("Not enough STFT frames" in str(w.message) for w in caught):
            raise DlspError(f"too little speech for {name}: needs about {STOI_MIN_SECONDS} s of non-silent "
                            f"reference, has {ref.size / sample_rate:.2f} s in all")
        return value

    return _map_pairs(score_one, reference, estimate, on_error, name)


def enhancement_metrics(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    *,
    pesq: bool = True,
    stoi: bool = True,
    on_error: OnError = "raise",
) -> dict[str, float | np.ndarray | None]:
    """All enhancement metrics at once.

    Returns:
        `{"snr", "segsnr", "si_sdr", "pesq", "stoi", "estoi"}`; `pesq` is None when `pesq=False`, `stoi` and
        `estoi` are None when `stoi=False`. Values are floats for 1-D input, arrays `(...)` for batches.

    Shape:
        `(..., time)` and `(..., time)`.
    """
    ref, est, sr = reference, estimate, sample_rate
    return {
        "snr": snr(ref, est),
        "segsnr": segmental_snr(ref, est, sr),
        "si_sdr": si_sdr(ref, est),
        "pesq": pesq_score(ref, est, sr, on_error=on_error) if pesq else None,
        "stoi": stoi_score(ref, est, sr, on_error=on_error) if stoi else None,
        "estoi": stoi_score(ref, est, sr, extended=True, on_error=on_error) if stoi else None,
    }


def _validated_pair(
    reference: np.ndarray, estimate: np.ndarray, check_silent: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.ndim == 0 or estimate.ndim == 0:
        raise DlspError("reference and estimate must be arrays of shape (..., time), got scalars")
    if reference.shape != estimate.shape:
        if reference.ndim == estimate.ndim == 1:
            raise DlspError(f"reference and estimate lengths differ: {reference.shape[0]} vs "
                            f"{estimate.shape[0]} samples")
        raise DlspError(f"reference and estimate shapes differ: {reference.shape} vs {estimate.shape}")
    if reference.shape[-1] == 0:
        raise DlspError("reference and estimate are empty (zero samples)")
    for name, signal in (("reference", reference), ("estimate", estimate)):
        if not np.all(np.isfinite(signal)):
            raise DlspError(f"{name} contains NaN or Inf samples")
    if check_silent:
        _check_not_silent(reference, "reference is silent (all zeros)")
    return reference, estimate


def _check_not_silent(reference: np.ndarray, message: str) -> None:
    silent = ~np.any(reference != 0, axis=-1)
    if np.any(silent):
        if reference.ndim > 1:
            message += f" (batch index {tuple(int(i) for i in np.argwhere(silent)[0])})"
        raise DlspError(message)


def _ratio_db(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # x/0 -> +inf is the intended answer for a perfect estimate; callers ensure the numerator is not 0/0.
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10 * np.log10(numerator / denominator)


def _as_output(values: np.ndarray) -> float | np.ndarray:
    return float(values) if np.ndim(values) == 0 else values


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")


def _map_pairs(score_one: Callable[[np.ndarray, np.ndarray], float], reference: np.ndarray,
               estimate: np.ndarray, on_error: OnError, name: str) -> float | np.ndarray:
    lead = reference.shape[:-1]
    refs = reference.reshape(-1, reference.shape[-1])
    ests = estimate.reshape(-1, estimate.shape[-1])
    scores = np.empty(len(refs))
    failures = []
    for i, (ref, est) in enumerate(zip(refs, ests, strict=True)):
        try:
            scores[i] = score_one(ref, est)
        except DlspError as exc:
            if on_error == "raise":
                if not lead:
                    raise
                index = tuple(int(j) for j in np.unravel_index(i, lead))
                raise DlspError(f"{exc} (batch index {index})") from None
            scores[i] = np.nan
            failures.append(str(exc))
    if failures:
        warnings.warn(f"{name} is NaN for {len(failures)} of {len(refs)} signals (first: {failures[0]})",
                      RuntimeWarning, stacklevel=3)
    return float(scores[0]) if not lead else scores.reshape(lead)


def _pesq_reason(exc: Exception) -> str:
    text = str(exc)
    if text.startswith(("b'", 'b"')):  # pesq's errors carry the C library's message as bytes
        text = text[2:-1]
    if isinstance(exc, ValueError) and "NaN" in text:
        return "the estimate has no usable signal"
    return text.rstrip(".").lower() or type(exc).__name__

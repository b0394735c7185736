"""`dlsp metrics`: score an enhanced or degraded recording against its clean reference."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from dlsp.cli.common import add_command, positive_int
from dlsp.fileio import json_safe

if TYPE_CHECKING:
    import numpy as np

# Lengths may differ by this fraction of the reference (codec priming, resampler rounding) and get trimmed.
LENGTH_TOLERANCE = 0.01

DESCRIPTION = """\
Score an enhanced or degraded recording EST against its clean reference REF: SNR, segmental SNR, SI-SDR
(dB), PESQ (MOS-LQO) and STOI/ESTOI (0-1).

Both files are read as mono (channels averaged). EST is resampled to REF's sample rate, or both to --sr.
The two must then have the same length: if they differ by at most 1% of REF's length (codec padding,
resampler rounding) both are trimmed to the shorter one and a warning says so; a larger difference is an
error, since the signals are then probably not aligned. PESQ is wideband at 16 kHz for rates of 16 kHz and
up, narrowband at 8 kHz below that (resampled as needed). A silent REF is an error; a silent EST is scored
(SNR 0 dB) except by PESQ, which is undefined for it (use --no-pesq). PESQ needs at least 0.25 s and STOI
about 0.4 s of speech; when either cannot be computed the command fails and names the flag that skips it.
In --json output, values that are not finite (identical files give SNR = inf) are written as null."""

EXAMPLES = """\
dlsp metrics clean.wav enhanced.wav
dlsp metrics clean.wav enhanced.wav --json
dlsp metrics clean.wav noisy_8k.wav --sr 16000 --no-pesq"""

METRIC_KEYS = ("snr", "segsnr", "si_sdr", "pesq", "stoi", "estoi")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "metrics", "score an enhanced recording against its clean reference",
                         EXAMPLES, description=DESCRIPTION)
    parser.add_argument("reference", metavar="REF", help="clean reference audio file")
    parser.add_argument("estimate", metavar="EST", help="enhanced or degraded audio file to score")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    # SUPPRESS keeps the help from adding "(default: None)" after the real default, REF's rate.
    parser.add_argument("--sr", type=positive_int, default=argparse.SUPPRESS, metavar="HZ",
                        help="resample both files to this rate before scoring (default: REF's rate)")
    parser.add_argument("--no-pesq", action="store_true", help="skip PESQ (the slowest metric)")
    parser.add_argument("--no-stoi", action="store_true", help="skip STOI and ESTOI")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = compare_files(args.reference, args.estimate, sample_rate=getattr(args, "sr", None),
                           pesq=not args.no_pesq, stoi=not args.no_stoi)
    if args.json:
        print(json.dumps(json_safe(result), indent=2, allow_nan=False))
    else:
        print(format_table(result))
    return 0


def compare_files(reference_path: str, estimate_path: str, sample_rate: int | None = None,
                  pesq: bool = True, stoi: bool = True) -> dict:
    """Load, align and score two files; returns the metrics followed by what was compared."""
    from dlsp.audio.io import audio_info, is_silent, load_audio
    from dlsp.errors import DlspError
    from dlsp.metrics.enhancement import pesq_mode_for, pesq_score, segmental_snr, si_sdr, snr, stoi_score

    # Read both headers first so a bad EST is reported before any slow decoding or resampling.
    ref_info = audio_info(reference_path)
    est_info = audio_info(estimate_path)
    reference, rate = load_audio(reference_path, sample_rate=sample_rate)
    estimate, _ = load_audio(estimate_path, sample_rate=rate, allow_silent=True)
    trimmed = _trim_to_common_length(reference, estimate, reference_path, estimate_path, rate)
    reference, estimate = reference[: trimmed["length"]], estimate[: trimmed["length"]]
    if pesq and is_silent(estimate):
        raise DlspError("audio is silent (peak below -90 dBFS), PESQ is undefined (use --no-pesq)",
                        estimate_path)

    def scored(metric: Callable[[], float], skip_flag: str | None = None) -> float:
        # The metric functions know no file names; name both here, and the flag that avoids the failure.
        try:
            return metric()
        except DlspError as exc:
            hint = f" (use {skip_flag} to skip it)" if skip_flag else ""
            raise DlspError(exc.problem + hint, f"{reference_path} vs {estimate_path}") from None

    ref, est = reference, estimate
    return {
        "snr": scored(lambda: snr(ref, est)),
        "segsnr": scored(lambda: segmental_snr(ref, est, rate)),
        "si_sdr": scored(lambda: si_sdr(ref, est)),
        "pesq": scored(lambda: pesq_score(ref, est, rate), "--no-pesq") if pesq else None,
        "stoi": scored(lambda: stoi_score(ref, est, rate), "--no-stoi") if stoi else None,
        "estoi": scored(lambda: stoi_score(ref, est, rate, extended=True), "--no-stoi") if stoi else None,
        "pesq_mode": pesq_mode_for(rate) if pesq else None,
        "reference": str(reference_path),
        "estimate": str(estimate_path),
        "sample_rate": rate,
        "reference_sample_rate": ref_info.sample_rate,
        "estimate_sample_rate": est_info.sample_rate,
        "seconds": trimmed["length"] / rate,
        "trimmed_samples": trimmed["trimmed"],
    }


def format_table(result: dict) -> str:
    """The human-readable report: what was compared, then one metric per line."""
    rate = result["sample_rate"]
    lines = [f"reference  {result['reference']}" + _rate_note(result["reference_sample_rate"], rate),
             f"estimate   {result['estimate']}" + _rate_note(result["estimate_sample_rate"], rate),
             f"length     {result['seconds']:.3f} s at {rate} Hz", "",
             "metric  value"]
    units = {"snr": " dB", "segsnr": " dB", "si_sdr": " dB", "pesq": f" ({result['pesq_mode']})"}
    for key in METRIC_KEYS:
        value = result[key]
        if value is None:
            lines.append(f"{key:<7} skipped")
        else:
            digits = 2 if key in ("snr", "segsnr", "si_sdr", "pesq") else 3
            lines.append(f"{key:<7} {value:>6.{digits}f}{units.get(key, '')}")
    return "\n".join(lines)


def _trim_to_common_length(reference: np.ndarray, estimate: np.ndarray, reference_path: str,
                           estimate_path: str, rate: int) -> dict:
    from dlsp.errors import DlspError

    ref_len, est_len = reference.shape[-1], estimate.shape[-1]
    if ref_len == est_len:
        return {"length": ref_len, "trimmed": 0}
    allowed = max(1, math.floor(LENGTH_TOLERANCE * ref_len))
    if abs(ref_len - est_len) > allowed:
        raise DlspError(f"has {est_len} samples at {rate} Hz but the reference {reference_path} has "
                        f"{ref_len} (more than 1% apart, the signals are probably not aligned)",
                        estimate_path)
    length = min(ref_len, est_len)
    print(f"dlsp: warning: {estimate_path} has {est_len} samples at {rate} Hz and {reference_path} has "
          f"{ref_len}; scoring the first {length} of each", file=sys.stderr)
    return {"length": length, "trimmed": abs(ref_len - est_len)}


def _rate_note(file_rate: int, rate: int) -> str:
    return "" if file_rate == rate else f"  (resampled from {file_rate} Hz)"

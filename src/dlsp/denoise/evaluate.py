"""Evaluating speech denoisers on clean/noisy pairs: metrics before and after, by input SNR, and speed.

Any object with a `sample_rate` attribute and an `enhance(audio, sample_rate)` method (the `Enhancer` protocol,
which `dlsp.denoise.enhance.Denoiser` follows, as can wrappers of other denoisers) is evaluated the same way:
each pair is loaded as mono at the clean file's rate (or `sample_rate`), the noisy signal is enhanced, and SNR,
segmental SNR, SI-SDR, PESQ, STOI and ESTOI are computed against the clean one before (noisy) and after
(enhanced). PESQ and STOI give NaN, not an error, for a file they cannot score, and NaN values are left out of
the means.

Input SNR is `10 log10(sum clean² / sum (noisy - clean)²)`, i.e. `snr(clean, noisy)`, unless the pair says
what it was mixed at (a `dlsp data mix` manifest's `snr_db`). Files are grouped into input-SNR buckets, by
default centred on -5, 0, 5, 10, 15 and 20 dB (edges halfway between centres: -7.5, -2.5, ..., 22.5); files
outside them fall into open buckets `<-7.5` and `>=22.5`. The real-time factor is processing time divided by
audio time, timed around `enhance` alone, after one untimed warm-up call.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from dlsp.audio.io import load_audio
from dlsp.errors import DlspError
from dlsp.fileio import write_json, write_text

METRICS = ("snr", "segsnr", "si_sdr", "pesq", "stoi", "estoi")
METRIC_LABELS = {"snr": "SNR (dB)", "segsnr": "segSNR (dB)", "si_sdr": "SI-SDR (dB)", "pesq": "PESQ",
                 "stoi": "STOI", "estoi": "ESTOI"}
DEFAULT_BUCKET_CENTRES = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
CSV_COLUMNS = ("name", "clean", "noisy", "sample_rate", "seconds", "input_snr", "input_snr_source", "snr_bucket",
               "processing_seconds", "rtf",
               *(f"{m}_{when}" for m in METRICS for when in ("before", "after", "improvement")))
# The warm-up call enhances at most this much audio: enough to build caches, short enough to cost nothing.
WARMUP_SECONDS = 1.0


class Enhancer(Protocol):
    """What `evaluate_enhancer` needs: the rate the enhancer works at and a same-shape, same-rate `enhance`."""

    sample_rate: int

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


class EvalPair(NamedTuple):
    """A clean file, its noisy version, and (when known) the SNR it was mixed at."""

    name: str
    clean: Path
    noisy: Path
    snr_db: float | None = None
    split: str | None = None


@dataclass(frozen=True)
class SnrBucket:
    """Input SNRs in `[low, high)` dB; `centre` is None for the open buckets below and above the grid."""

    label: str
    low: float
    high: float
    centre: float | None


def pairs_from_dataset(root: str | os.PathLike[str], *, allow_outside: bool = False) -> list[EvalPair]:
    """Pairs of a `dlsp data mix` folder or manifest, VoiceBank-DEMAND or MS-SNSD folders, or clean/ + noisy/.

    See `dlsp.data.pairs.index_pairs` for the layouts; names are the noisy files' stems.
    """
    from dlsp.data.pairs import index_pairs

    items = index_pairs(root, allow_outside=allow_outside)
    return _named([(item.clean, item.noisy, item.snr_db, item.split) for item in items])


def pairs_from_folders(clean_dir: str | os.PathLike[str], noisy_dir: str | os.PathLike[str]) -> list[EvalPair]:
    """Pairs of two folders whose files match by relative path (headers are checked, nothing is decoded).

    Raises:
        DlspError: a missing folder, no audio, a file without its partner (naming the first such file), or a
            partner of another length or rate.
    """
    from dlsp.audio.io import audio_info, list_audio_files

    clean_dir, noisy_dir = Path(clean_dir), Path(noisy_dir)
    clean = {path.relative_to(clean_dir).as_posix(): path for path in list_audio_files(clean_dir)}
    noisy = {path.relative_to(noisy_dir).as_posix(): path for path in list_audio_files(noisy_dir)}
    if not noisy:
        raise DlspError("no audio files found", noisy_dir)
    unmatched = sorted(set(clean) ^ set(noisy))
    if unmatched:
        rel = unmatched[0]
        folder, kind = (noisy_dir, "noisy") if rel in clean else (clean_dir, "clean")
        raise DlspError(f"has no {kind} partner {folder / rel}", clean.get(rel) or noisy[rel])
    items = []
    for rel in sorted(noisy):
        clean_info, noisy_info = audio_info(clean[rel]), audio_info(noisy[rel])
        if (clean_info.sample_rate, clean_info.frames) != (noisy_info.sample_rate, noisy_info.frames):
            raise DlspError(f"{noisy_info.frames} samples at {noisy_info.sample_rate} Hz but its clean partner "
                            f"{clean[rel]} has {clean_info.frames} at {clean_info.sample_rate} Hz", noisy[rel])
        items.append((clean[rel], noisy[rel], None, None))
    return _named(items)


def snr_buckets(centres: Sequence[float] = DEFAULT_BUCKET_CENTRES) -> list[SnrBucket]:
    """Buckets around increasing `centres`: edges halfway between neighbours, the outer ones as far out as the
    nearest inner edge, plus open buckets below and above."""
    centres = [float(c) for c in centres]
    if len(centres) < 2 or any(b <= a for a, b in pairwise(centres)):
        raise DlspError(f"SNR bucket centres must be at least two increasing numbers, got {centres}")
    inner = [(a + b) / 2 for a, b in pairwise(centres)]
    edges = [centres[0] - (inner[0] - centres[0]), *inner, centres[-1] + (centres[-1] - inner[-1])]
    buckets = [SnrBucket(f"{c:g}", lo, hi, c) for c, lo, hi in zip(centres, edges, edges[1:], strict=False)]
    return [SnrBucket(f"<{edges[0]:g}", -math.inf, edges[0], None), *buckets,
            SnrBucket(f">={edges[-1]:g}", edges[-1], math.inf, None)]


def bucket_for(snr_db: float, buckets: Sequence[SnrBucket]) -> SnrBucket:
    """The bucket holding `snr_db` (NaN and +-inf go to the open buckets' ends)."""
    if math.isnan(snr_db):
        return buckets[-1]
    return next(b for b in buckets if b.low <= snr_db < b.high or (b.high == math.inf and snr_db == math.inf))


@dataclass
class EvalResult:
    """Per-file rows (`CSV_COLUMNS`) of one evaluation, and their summary, table, CSV, JSON and plot."""

    rows: list[dict[str, Any]]
    buckets: list[SnrBucket]
    metrics: tuple[str, ...]
    label: str = "enhancer"
    enhancer_sample_rate: int | None = None
    examples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Means before/after/improvement per metric (None when not computed), overall and per SNR bucket."""
        summary: dict[str, Any] = {"enhancer": self.label, "enhancer_sample_rate": self.enhancer_sample_rate,
                                   **_aggregate(self.rows, self.metrics)}
        del summary["input_snr_mean"]  # given below with the range
        snrs = np.array([row["input_snr"] for row in self.rows], dtype=float)
        summary["input_snr"] = {"mean": _mean(snrs), "min": float(snrs.min()), "max": float(snrs.max())}
        summary["sample_rates"] = sorted({row["sample_rate"] for row in self.rows})
        summary["buckets"] = []
        for bucket in self.buckets:
            rows = [row for row in self.rows if row["snr_bucket"] == bucket.label]
            if rows or bucket.centre is not None:
                summary["buckets"].append({"label": bucket.label, "centre": bucket.centre, "low": bucket.low,
                                           "high": bucket.high, **_aggregate(rows, self.metrics)})
        summary["examples"] = list(self.examples)
        return summary

    def table(self) -> str:
        """The overall table, the per-bucket improvements and the real-time factor, for the terminal."""
        from dlsp.report.tables import format_table

        summary = self.summary()
        overall = [[METRIC_LABELS[m], *(summary[m][k] for k in ("before", "after", "improvement"))]
                   for m in self.metrics]
        shown = [m for m in ("snr", "si_sdr", "pesq", "stoi") if m in self.metrics]
        bucket_rows = [[b["label"], b["n_files"], *(b[m]["improvement"] for m in shown)]
                       for b in summary["buckets"] if b["n_files"]]
        seconds = summary["seconds"]
        duration = f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
        return "\n".join([
            f"{summary['n_files']} files, {duration} of audio; {self.label}", "",
            format_table(["metric", "noisy", "denoised", "improvement"], overall, precision=3), "",
            "improvement by input SNR (dB)",
            format_table(["input SNR", "files", *(METRIC_LABELS[m].split(" ")[0] for m in shown)], bucket_rows,
                         precision=3), "",
            f"real-time factor {summary['rtf']:.3g} ({summary['processing_seconds']:.3g} s of processing for "
            f"{duration} of audio; below 1 is faster than real time)",
        ])

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the per-file rows (`CSV_COLUMNS`; NaN and skipped metrics as empty cells) atomically."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows([_csv_cell(row.get(column)) for column in CSV_COLUMNS] for row in self.rows)
        return write_text(path, buffer.getvalue())

    def write_summary(self, path: str | os.PathLike[str]) -> Path:
        """Write `summary()` as strict JSON (non-finite values as null) atomically."""
        return write_json(path, self.summary())

    def plot_improvement(self, path: str | os.PathLike[str]) -> Path:
        """PNG: SI-SDR and PESQ (STOI without PESQ) improvement against input SNR, per file and bucket means."""
        shown = ["si_sdr", *(m for m in ("pesq", "stoi") if m in self.metrics)][:2]
        buckets = [b for b in self.summary()["buckets"] if b["n_files"]]
        panels = []
        for metric in shown:
            points = [(row["input_snr"], row[f"{metric}_improvement"]) for row in self.rows]
            # Open buckets have no centre; their files' mean input SNR places them.
            means = [(b["centre"] if b["centre"] is not None else b["input_snr_mean"], b[metric]["improvement"])
                     for b in buckets]
            panels.append((f"{METRIC_LABELS[metric]} improvement", points, means))
        return _improvement_plot(path, panels, f"{self.label}: improvement against input SNR")

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write `per_file.csv`, `summary.json` and `improvement.png` into `out_dir`."""
        out_dir = Path(out_dir)
        return {"per_file": self.write_csv(out_dir / "per_file.csv"),
                "summary": self.write_summary(out_dir / "summary.json"),
                "plot": self.plot_improvement(out_dir / "improvement.png")}


def evaluate_enhancer(
    enhancer: Enhancer,
    pairs: Sequence[EvalPair | tuple],
    sample_rate: int | None = None,
    *,
    pesq: bool = True,
    stoi: bool = True,
    progress: bool = True,
    examples_dir: str | os.PathLike[str] | None = None,
    n_examples: int = 3,
    bucket_centres: Sequence[float] = DEFAULT_BUCKET_CENTRES,
    label: str | None = None,
) -> EvalResult:
    """Enhance every noisy file and score it and the noisy input against the clean file.

    Args:
        enhancer: any `Enhancer`.
        pairs: `EvalPair`s or tuples `(name, clean, noisy[, snr_db])`.
        sample_rate: evaluate at this rate; `None` uses each clean file's rate.
        examples_dir: if set, write `n_examples` examples spread over the input SNRs there once every file is
            scored: `<name>_noisy.wav`, `<name>_denoised.wav`, `<name>_clean.wav` and a spectrogram `<name>.png`.
        bucket_centres: input-SNR bucket centres (see `snr_buckets`).
        label: names the enhancer in the summary; default its class name.

    Raises:
        DlspError: no pairs, or a file that cannot be read (naming it). Nothing is written before every file is
            scored.
    """
    from dlsp.progress import progress_bar

    pairs = [EvalPair(*pair) for pair in pairs]
    if not pairs:
        raise DlspError("no clean/noisy pairs to evaluate")
    buckets = snr_buckets(bucket_centres)
    metrics = tuple(m for m in METRICS if (pesq or m != "pesq") and (stoi or m not in ("stoi", "estoi")))
    failures: dict[str, list[tuple[str, str]]] = {}
    rows = []
    for index, pair in enumerate(progress_bar(pairs, desc="evaluate", unit="file", file=sys.stderr,
                                              disable=not progress, leave=False)):
        clean, noisy, rate = _load_pair(pair, sample_rate)
        if index == 0:
            _enhance(enhancer, noisy[: int(WARMUP_SECONDS * rate)], rate, pair.noisy)
        start = time.perf_counter()
        enhanced = _enhance(enhancer, noisy, rate, pair.noisy)
        elapsed = time.perf_counter() - start
        before = _scores(clean, noisy, rate, pair, pesq, stoi, failures)
        after = _scores(clean, enhanced, rate, pair, pesq, stoi, failures)
        rows.append(_row(pair, rate, clean.size / rate, elapsed, before, after, buckets))
    for metric, reasons in failures.items():
        files = len({name for name, _ in reasons})
        warnings.warn(f"{metric} could not be computed for {files} of {len(pairs)} files (first: "
                      f"{reasons[0][0]}: {reasons[0][1]}); "
                      "those values are NaN and left out of the means", RuntimeWarning, stacklevel=2)
    result = EvalResult(rows, buckets, metrics, label or type(enhancer).__name__,
                        getattr(enhancer, "sample_rate", None))
    if examples_dir is not None and n_examples > 0:
        result.examples = write_examples(enhancer, pairs, rows, examples_dir, n_examples, sample_rate)
    return result


def write_examples(enhancer: Enhancer, pairs: Sequence[EvalPair], rows: Sequence[dict[str, Any]],
                   out_dir: str | os.PathLike[str], n_examples: int, sample_rate: int | None = None) -> list[str]:
    """Re-enhance `n_examples` pairs spread evenly over the input SNRs; write their wavs and spectrograms.

    Returns:
        The example names (file-name safe).
    """
    from dlsp.audio.io import save_audio
    from dlsp.report.plots import spectrogram_panels

    order = np.argsort([row["input_snr"] for row in rows], kind="stable")
    picks = sorted({int(order[round(i)]) for i in np.linspace(0, len(order) - 1, min(n_examples, len(order)))})
    names = []
    for index in picks:
        pair, row = pairs[index], rows[index]
        clean, noisy, rate = _load_pair(pair, sample_rate)
        enhanced = _enhance(enhancer, noisy, rate, pair.noisy)
        name = pair.name.replace("/", "_").replace("\\", "_")
        signals = [("noisy", noisy, "before"), ("denoised", enhanced, "after"), ("clean", clean, None)]
        for kind, audio, _ in signals:
            # 32-bit float keeps levels exact: an enhancer may overshoot full scale.
            save_audio(Path(out_dir) / f"{name}_{kind}.wav", audio, rate, subtype="FLOAT")
        titles = [f"{kind}  (SI-SDR {row[f'si_sdr_{when}']:.1f} dB)" if when else kind for kind, _, when in signals]
        spectrogram_panels(Path(out_dir) / f"{name}.png",
                           [(title, audio) for title, (_, audio, _) in zip(titles, signals, strict=True)], rate)
        names.append(name)
    return names


def _named(items: list[tuple[Path, Path, float | None, str | None]]) -> list[EvalPair]:
    """Name pairs by the noisy stem, or by the path below the common folder when stems repeat."""
    stems = [noisy.stem for _, noisy, _, _ in items]
    if len(set(stems)) < len(stems):
        common = Path(os.path.commonpath([noisy.parent for _, noisy, _, _ in items]))
        stems = [noisy.relative_to(common).with_suffix("").as_posix() for _, noisy, _, _ in items]
    return [EvalPair(stem, *item) for stem, item in zip(stems, items, strict=True)]


def _load_pair(pair: EvalPair, sample_rate: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    clean, rate = load_audio(pair.clean, sample_rate=sample_rate)
    noisy, _ = load_audio(pair.noisy, sample_rate=rate, allow_silent=True)
    if noisy.shape != clean.shape:
        raise DlspError(f"{noisy.size} samples at {rate} Hz but its clean partner {pair.clean} has {clean.size}",
                        pair.noisy)
    return clean, noisy, rate


def _enhance(enhancer: Enhancer, audio: np.ndarray, rate: int, path: Path) -> np.ndarray:
    try:
        enhanced = np.asarray(enhancer.enhance(audio, rate), dtype=np.float32)
    except DlspError as exc:
        # Arrays carry no file name; the user needs to know which file the enhancer refused.
        raise DlspError(exc.problem, exc.path or path) from None
    if enhanced.shape != audio.shape:
        raise DlspError(f"the enhancer returned shape {enhanced.shape} for input of shape {audio.shape}", path)
    if not np.all(np.isfinite(enhanced)):
        raise DlspError("the enhancer returned NaN or Inf samples", path)
    return enhanced


def _scores(clean: np.ndarray, estimate: np.ndarray, rate: int, pair: EvalPair, pesq: bool, stoi: bool,
            failures: dict[str, list[tuple[str, str]]]) -> dict[str, float]:
    """All metrics of one signal; a PESQ or STOI that cannot be computed is NaN and noted in `failures`."""
    from dlsp.metrics import enhancement as em

    def robust(metric: str, score) -> float:
        # Same as on_error="nan", but keeping the reason for one summary warning instead of one per file.
        try:
            return float(score())
        except DlspError as exc:
            failures.setdefault(metric, []).append((pair.name, str(exc)))
            return math.nan

    try:
        return {
            "snr": float(em.snr(clean, estimate)),
            "segsnr": float(em.segmental_snr(clean, estimate, rate)),
            "si_sdr": float(em.si_sdr(clean, estimate)),
            "pesq": robust("PESQ", lambda: em.pesq_score(clean, estimate, rate)) if pesq else math.nan,
            "stoi": robust("STOI", lambda: em.stoi_score(clean, estimate, rate)) if stoi else math.nan,
            "estoi": robust("ESTOI", lambda: em.stoi_score(clean, estimate, rate, extended=True)) if stoi
            else math.nan,
        }
    except DlspError as exc:
        raise DlspError(exc.problem, pair.noisy) from None


def _row(pair: EvalPair, rate: int, seconds: float, elapsed: float, before: dict[str, float],
         after: dict[str, float], buckets: Sequence[SnrBucket]) -> dict[str, Any]:
    known = pair.snr_db is not None and math.isfinite(pair.snr_db)
    input_snr = float(pair.snr_db) if known else before["snr"]
    row: dict[str, Any] = {
        "name": pair.name, "clean": str(pair.clean), "noisy": str(pair.noisy), "sample_rate": rate,
        "seconds": seconds, "input_snr": input_snr, "input_snr_source": "manifest" if known else "measured",
        "snr_bucket": bucket_for(input_snr, buckets).label, "processing_seconds": elapsed, "rtf": elapsed / seconds,
    }
    for metric in METRICS:
        row[f"{metric}_before"], row[f"{metric}_after"] = before[metric], after[metric]
        with np.errstate(invalid="ignore"):
            row[f"{metric}_improvement"] = after[metric] - before[metric]
    return row


def _aggregate(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """Means over files where both values are not NaN; the improvement is the mean of per-file differences."""
    seconds = sum(row["seconds"] for row in rows)
    processing = sum(row["processing_seconds"] for row in rows)
    out: dict[str, Any] = {"n_files": len(rows), "seconds": seconds, "processing_seconds": processing,
                           "rtf": processing / seconds if seconds else math.nan,
                           "input_snr_mean": _mean(np.array([row["input_snr"] for row in rows], dtype=float))}
    for metric in METRICS:
        if metric not in metrics:
            out[metric] = None
            continue
        before = np.array([row[f"{metric}_before"] for row in rows], dtype=float)
        after = np.array([row[f"{metric}_after"] for row in rows], dtype=float)
        valid = ~np.isnan(before) & ~np.isnan(after)
        with np.errstate(invalid="ignore"):
            out[metric] = {"before": _mean(before[valid]), "after": _mean(after[valid]),
                           "improvement": _mean(after[valid] - before[valid]), "n_files": int(valid.sum())}
    return out


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.mean(values)) if values.size else math.nan


def _improvement_plot(path: str | os.PathLike[str], panels: list[tuple[str, list, list]], title: str) -> Path:
    """One panel per `(ylabel, [(input SNR, improvement)] per file, [(x, mean)] per bucket)`, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlsp.fileio import atomic_path

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False, layout="constrained")
    for ax, (ylabel, points, means) in zip(axes[0], panels, strict=True):
        points = np.array([p for p in points if np.all(np.isfinite(p))], dtype=float).reshape(-1, 2)
        means = np.array([m for m in means if np.all(np.isfinite(m))], dtype=float).reshape(-1, 2)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.scatter(points[:, 0], points[:, 1], s=12, alpha=0.5, label="file")
        ax.plot(means[:, 0], means[:, 1], "o-", color="C3", label="bucket mean")
        ax.set_xlabel("input SNR (dB)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _csv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return str(value)

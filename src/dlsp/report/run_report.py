"""`dlsp report`: one self-contained HTML page for a run folder, or several run folders side by side.

Everything is embedded (PNG images and WAV audio as data URIs), so the file can be mailed or archived alone.
A run folder is anything a task wrote: `config.yaml`, `metrics.jsonl`, `results.json`, PNG figures (curves,
confusion matrices, DET curves, embedding maps, spectrograms) and audio examples under `samples/`. The page
opens on a summary (the few results that matter for the run's task, with readable names and units: see
`METRIC_LABELS`), then every metric's curve, the task's figures, audio players (noisy / denoised / clean for
denoising runs), and ends with the raw values (results.json, every epoch, the config). `--compare` puts the
results (same readable names), config differences and curves of several runs together.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dlsp.errors import DlspError
from dlsp.report.html import STYLE, Html, table_html
from dlsp.train.tracking import flatten

RUN_MARKERS = ("config.yaml", "metrics.jsonl", "results.json")
MAX_AUDIO_FILES = 24
MAX_AUDIO_SECONDS = 15.0
MAX_IMAGES = 40
SKIPPED_FOLDERS = ("wandb", "mlartifacts")  # other tools' files, not the task's figures

# Readable names of results.json / metrics.jsonl keys (flattened: `test.macro_f1`). A label ending in "(%)" marks a
# fraction shown as a percentage. A key that extends a labelled one with a unit (`val_eer_fsdd`) reads
# "validation EER, fsdd (%)"; any other key is shown with its underscores turned into spaces.
METRIC_LABELS = {
    "model": "model",
    "val_si_sdr": "validation SI-SDR (dB)",
    "val_si_sdr_improvement": "validation SI-SDR gain (dB)",
    "si_sdr": "SI-SDR (dB)",
    "si_sdr_improvement": "SI-SDR gain (dB)",
    "test.clip_accuracy": "test clip accuracy (%)",
    "test.accuracy": "test segment accuracy (%)",
    "test.macro_f1": "test macro F1",
    "test_accuracy": "test accuracy (%)",
    "val_clip_accuracy": "validation clip accuracy (%)",
    "val_accuracy": "validation accuracy (%)",
    "accuracy": "accuracy (%)",
    "macro_f1": "macro F1",
    "val_eer": "validation EER (%)",
    "val_threshold": "validation EER threshold",
    "score_eer": "normalized-score EER (%)",
    "score_threshold": "normalized-score EER threshold",
    "cosine_eer": "cosine EER (%)",
    "score_far": "normalized-score false acceptance rate (%)",
    "score_frr": "normalized-score false rejection rate (%)",
    "best_epoch": "best epoch",
    "epochs": "epochs",
    "stopped": "stopped by",
    "val_loss": "validation loss",
    "train_loss": "training loss",
    "train_seconds": "training time (s)",
    "seconds": "run time (s)",
    "seconds_per_epoch": "seconds per epoch",
    "params": "parameters",
}
# The summary's rows, in this order, among those results.json has (a run with none of them: its first scalars).
HEADLINE_KEYS = ("model", "val_si_sdr", "val_si_sdr_improvement", "test.clip_accuracy", "test.accuracy",
                 "test.macro_f1", "test_accuracy", "val_clip_accuracy", "val_accuracy", "val_eer", "val_threshold",
                 "best_epoch", "epochs", "stopped")
MAX_FALLBACK_HEADLINE = 8
UNITS = (" (dB)", " (%)", " (s)")


def read_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The parts of a run folder a report shows; refuses a folder that is not a run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DlspError("run folder does not exist" if not folder.exists() else "is not a folder", folder)
    if not any((folder / name).exists() for name in RUN_MARKERS):
        raise DlspError(f"not a run folder (none of {', '.join(RUN_MARKERS)})", folder)
    return {
        "name": folder.name,
        "folder": folder,
        "config": _yaml(folder / "config.yaml"),
        "results": _as_mapping(_json(folder / "results.json")),
        "history": _history(folder / "metrics.jsonl"),
        "images": _files(folder, (".png",), MAX_IMAGES),
        "audio": _files(folder / "samples", (".wav", ".flac", ".ogg"), MAX_AUDIO_FILES),
    }


def build_report(runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """Write the report of one run, or the comparison of several, to `out` (atomically)."""
    from dlsp.fileio import write_text

    if not runs:
        raise DlspError("give at least one run folder")
    loaded = [read_run(run) for run in runs]
    if len(loaded) == 1:
        title, body = f"dlsp run {loaded[0]['name']}", _single(loaded[0])
    else:
        title, body = f"dlsp: {len(loaded)} runs compared", _compare(loaded)
    return write_text(out, _page(title, body))


def _single(run: dict[str, Any]) -> list[tuple[str, str]]:
    sections = []
    figures = [p for p in run["images"] if p.parent.name != "samples"]
    headline = _headline(run["results"])
    if headline:
        sections.append(("Summary", table_html(["", "value"], headline)))
    if run["history"]:
        sections.append(("Curves", _image(_curves_png([run]), "metric curves")))
    if figures:
        sections.append(("Figures", "".join(_figure(p, run["folder"]) for p in figures)))
    if run["audio"]:
        sections.append(("Audio examples", _audio_examples(run)))
    raw = []
    if run["results"]:
        confusion_png = next((p.name for p in figures if "confusion" in p.stem.lower()), None)
        raw.append("<h3>results.json</h3>" + table_html(["key", "value"], _raw_rows(run["results"], confusion_png)))
    if run["history"]:
        keys = _metric_keys([run])
        rows = [[record.get("epoch", i) + 1 if isinstance(record.get("epoch"), int) else i + 1,
                 *[record.get(k) for k in keys]] for i, record in enumerate(run["history"])]
        raw.append("<h3>metrics.jsonl</h3><details><summary>every epoch</summary>"
                   + table_html(["epoch", *keys], [[_value(v) for v in row] for row in rows]) + "</details>")
    if run["config"] is not None:
        raw.append("<h3>config.yaml</h3>"
                   f"<pre>{html.escape(yaml.safe_dump(run['config'], sort_keys=False))}</pre>")
    if raw:
        sections.append(("Raw values", "".join(raw)))
    return sections


def _compare(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    names = [run["name"] for run in runs]
    results = [flatten(run["results"]) for run in runs]
    keys = list(dict.fromkeys(key for result in results for key in result))
    keys = [key for key in HEADLINE_KEYS if key in keys] + [key for key in keys if key not in HEADLINE_KEYS]
    sections = [("Results", table_html(["result", *names], [
        [metric_label(key), *[_shown(key, r[key]) if key in r else "" for r in results]] for key in keys]))]
    configs = [flatten(run["config"] or {}) for run in runs]
    config_keys = list(dict.fromkeys(key for config in configs for key in config))
    differing = [key for key in config_keys if len({json.dumps(c.get(key), default=str) for c in configs}) > 1]
    if differing:
        sections.append(("Config differences", table_html(
            ["key", *names], [[key, *[_value(c.get(key, "-")) for c in configs]] for key in differing])))
    if any(run["history"] for run in runs):
        sections.append(("Curves", _image(_curves_png(runs), "metric curves of every run")))
    for run in runs:
        figures = [p for p in run["images"] if p.parent.name != "samples"][:6]
        if figures:
            sections.append((f"Figures: {run['name']}", "".join(_figure(p, run["folder"]) for p in figures)))
    return sections


def metric_label(key: str) -> str:
    """The readable name of a results/metrics key: `val_si_sdr` -> "validation SI-SDR (dB)" (see METRIC_LABELS)."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    base = max((k for k in METRIC_LABELS if key.startswith(f"{k}_") and METRIC_LABELS[k].endswith(UNITS)),
               key=len, default=None)
    if base is not None:
        label = METRIC_LABELS[base]
        name, unit = label.rsplit(" (", 1)
        return f"{name}, {key[len(base) + 1:].replace('_', ' ')} ({unit}"
    return key.replace("_", " ")


def _is_percent(key: str) -> bool:
    return metric_label(key).endswith(" (%)")


def _shown(key: str, value: Any) -> Any:
    """A value as the summary shows it: fractions of "(%)" metrics as percentages, dB with 2 decimals."""
    if not _finite(value) or (isinstance(value, int) and not _is_percent(key)):
        return _cell(value)
    if _is_percent(key):
        return f"{100 * value:.2f}"
    return f"{value:.2f}" if metric_label(key).endswith(" (dB)") else f"{value:.4g}"


def _headline(results: dict[str, Any]) -> list[list[Any]]:
    flat = flatten(results)
    keys = [key for key in HEADLINE_KEYS if key in flat and flat[key] is not None]
    if not any(key in keys for key in HEADLINE_KEYS if key not in ("model", "best_epoch", "epochs", "stopped")):
        scalars = [key for key, value in results.items() if isinstance(value, str | int | float) and key not in keys]
        keys += scalars[:MAX_FALLBACK_HEADLINE]
    return [[metric_label(key), _shown(key, flat[key])] for key in keys]


def _raw_rows(mapping: dict[str, Any], confusion_png: str | None, prefix: str = "") -> list[list[Any]]:
    """results.json as (dotted key, value) rows; nested lists and tables of records as small tables."""
    rows: list[list[Any]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not _records(value):
            rows.extend(_raw_rows(value, confusion_png, f"{name}."))
        elif _is_matrix(value) and confusion_png and "confusion" in str(key):
            rows.append([name, f"shown in {confusion_png}"])
        else:
            labels = mapping.get("labels") if _is_matrix(value) else None
            rows.append([name, _cell(value, labels if isinstance(labels, list) else None)])
    return rows


def _records(value: Any) -> bool:
    """A non-empty mapping of flat mappings (e.g. per-class precision/recall/F1), shown as one table."""
    return (isinstance(value, dict) and bool(value) and all(isinstance(v, dict) and v for v in value.values())
            and all(not isinstance(x, dict | list) for v in value.values() for x in v.values()))


def _is_matrix(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(row, list) for row in value)


def _cell(value: Any, labels: list[Any] | None = None) -> Any:
    """A table cell: scalars as text, lists of scalars joined, matrices, records and lists of records as tables."""
    if _records(value):
        columns = list(dict.fromkeys(k for v in value.values() for k in v))
        return Html(table_html(["", *columns], [[name, *[_value(v.get(c, "")) for c in columns]]
                                                 for name, v in value.items()]))
    if _is_matrix(value):
        width = max(len(row) for row in value)
        heads = labels if labels is not None and len(labels) == len(value) == width else list(range(width))
        return Html(table_html(["", *map(str, heads)], [[heads[i] if i < len(heads) else i, *map(_value, row)]
                                                         for i, row in enumerate(value)]))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for v in value for k in v))
        return Html("<details><summary>" + html.escape(f"{len(value)} rows") + "</summary>"
                    + table_html(columns, [[_cell(v.get(c, "")) for c in columns] for v in value]) + "</details>")
    if isinstance(value, list):
        return ", ".join(str(_cell(v)) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return _value(value)


def _audio_examples(run: dict[str, Any]) -> str:
    """Players grouped by example (`NAME_kind.wav` files share NAME), each group with its spectrogram PNG."""
    groups: dict[str, list[Path]] = {}
    for path in run["audio"]:
        stem = path.stem
        group = stem.rsplit("_", 1)[0] if "_" in stem else stem
        groups.setdefault(group, []).append(path)
    parts = []
    for group, paths in groups.items():
        players = "".join(_audio(path) for path in paths)
        picture = path_png if (path_png := paths[0].with_name(f"{group}.png")).exists() else None
        parts.append(f"<div class=\"example\"><h3>{html.escape(group)}</h3><div class=\"players\">{players}</div>"
                     + (_image(picture.read_bytes(), f"{group} spectrograms") if picture else "") + "</div>")
    return "".join(parts)


def _curves_png(runs: list[dict[str, Any]]) -> bytes:
    """One panel per metric (losses on a log scale), one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = _metric_keys(runs)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False, layout="constrained")
    for ax, key in zip(axes.flat, keys, strict=False):
        for run in runs:
            scale = 100 if _is_percent(key) else 1
            points = [(i + 1, scale * r[key]) for i, r in enumerate(run["history"]) if _finite(r.get(key))]
            if points:
                ax.plot(*zip(*points, strict=True), label=run["name"], marker="." if len(points) < 30 else None)
        if "loss" in key and all(v > 0 for run in runs for r in run["history"] if _finite(v := r.get(key))):
            ax.set_yscale("log")
        ax.set_title(metric_label(key))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _metric_keys(runs: list[dict[str, Any]]) -> list[str]:
    keys = dict.fromkeys(key for run in runs for record in run["history"] for key, value in record.items()
                         if key not in ("epoch", "seconds") and _finite(value))
    return list(keys)


def _figure(path: Path, folder: Path) -> str:
    label = html.escape(str(path.relative_to(folder)))
    return f"<figure>{_image(path.read_bytes(), label)}<figcaption>{label}</figcaption></figure>"


def _image(png: bytes | Path, alt: str) -> str:
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    return f"<img alt=\"{html.escape(alt)}\" src=\"data:image/png;base64,{base64.b64encode(data).decode()}\">"


def _audio(path: Path) -> str:
    """A player with the file embedded as 16-bit WAV (any readable format; long files are cut)."""
    import soundfile as sf

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True,
                              frames=int(MAX_AUDIO_SECONDS * sf.info(str(path)).samplerate))
    except (sf.SoundFileError, RuntimeError) as exc:
        return f"<div class=\"player\">{html.escape(path.name)}: unreadable ({html.escape(str(exc)[:80])})</div>"
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1, 1), rate, subtype="PCM_16", format="WAV")
    label = html.escape(path.stem.rsplit("_", 1)[-1])
    return (f"<div class=\"player\">{label}<br><audio controls preload=\"metadata\" "
            f"src=\"data:audio/wav;base64,{base64.b64encode(buffer.getvalue()).decode()}\"></audio></div>")


def _page(title: str, sections: list[tuple[str, str]]) -> str:
    body = "\n".join(f"<section><h2>{html.escape(heading)}</h2>\n{content}</section>" for heading, content in sections)
    extra = ("figure { display: inline-block; margin: 0.5em; max-width: 48%; vertical-align: top; }"
             " figcaption { font-size: 0.8em; color: #666; } .players { display: flex; gap: 1em; }"
             " pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}{extra}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _files(folder: Path, suffixes: tuple[str, ...], limit: int) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [p for p in sorted(folder.rglob("*")) if p.suffix.lower() in suffixes and p.is_file()
             and not any(part in SKIPPED_FOLDERS or part.startswith("trial_") for part in p.relative_to(folder).parts)]
    return found[:limit]


def _history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise DlspError(f"line {number} is not JSON", path) from None
        if isinstance(record, dict):
            records.append(record)
    return records


def _yaml(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DlspError(f"config is not valid YAML ({str(exc).splitlines()[0]})", path) from None


def _json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DlspError(f"results are not valid JSON ({exc})", path) from None


def _as_mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"results": value}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _value(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value) if not value else _cell(value)
    return "" if value is None else value

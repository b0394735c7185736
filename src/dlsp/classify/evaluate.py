"""Scoring trained clip classifiers: segment and clip accuracy, macro F1, confusion matrices, whole datasets.

A clip's prediction averages the softmax probabilities of its segments (`dlsp.classify.inference`); segment
accuracy scores every segment on its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlsp.classify.inference import Classifier, clip_probabilities, segment_probabilities
from dlsp.errors import DlspError


def score(segment_probs: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Segment accuracy (`accuracy`), clip accuracy, clip macro F1 and the clip confusion matrix.

    Shape: `segment_probs` `(clips, n_segments, classes)`, `targets` `(clips,)` class indices.
    """
    from dlsp.metrics.classification import classification_summary

    n_segments = segment_probs.shape[1]
    segment_pred = segment_probs.argmax(axis=2).reshape(-1)
    segment_true = np.repeat(targets, n_segments)
    clip_pred = clip_probabilities(segment_probs).argmax(axis=1)
    classes = list(range(len(labels)))
    summary = classification_summary(targets, clip_pred, labels=classes, names=list(labels))
    return {
        "accuracy": float(np.mean(segment_pred == segment_true)),
        "clip_accuracy": summary["accuracy"],
        "macro_f1": summary["macro_f1"],
        "clips": len(targets),
        "segments": len(segment_true),
        "labels": summary["labels"],
        "confusion_matrix": summary["confusion_matrix"],
        "per_class": summary["per_class"],
    }


def confusion_plot(path: str | os.PathLike[str], matrix: Sequence[Sequence[int]], labels: Sequence[str],
                   title: str = "") -> Path:
    """Confusion matrix PNG (rows true, columns predicted; colours are row-normalised, cells show counts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlsp.fileio import atomic_path

    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size), layout="constrained")
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7 if len(labels) > 15 else 9)
    ax.set_yticks(range(len(labels)), labels, fontsize=7 if len(labels) > 15 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(labels) <= 20:
        for row in range(len(labels)):
            for col in range(len(labels)):
                if counts[row, col]:
                    ax.text(col, row, int(counts[row, col]), ha="center", va="center", fontsize=7,
                            color="white" if rates[row, col] > 0.5 else "black")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


@dataclass
class Evaluation:
    """Scores of a classifier on a set of clips, and a description of which clips."""

    scores: dict[str, Any]
    note: str
    report: list[str]


def evaluate_dataset(classifier: Classifier, root: str | os.PathLike[str], format: str = "auto",
                     split: str | None = None, run: str | os.PathLike[str] | None = None,
                     cache_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> Evaluation:
    """Score `classifier` on the clips of a dataset.

    `split` "test", "val" or "train" takes that split of the training run (`run/splits.json`, which must be of
    the same dataset folder); "all" takes every clip. By default: the run's test split when `root` is the
    folder the run was trained on, else every clip.
    """
    import json

    from dlsp.classify.data import index_clips
    from dlsp.classify.features import cached_features

    indexed = index_clips(root, format)
    listed = _run_splits(run, indexed.root)
    if split is None:
        split = "test" if listed is not None and listed.get("test") else "all"
    if split != "all":
        if listed is None:
            raise DlspError(f"--split {split} needs the run's splits.json for this same dataset folder; "
                            "use --split all to score every clip", root)
        wanted = {Path(p) for p in listed.get(split, [])}
        items = [item for item in indexed.items if item.path in wanted]
        if not items:
            raise DlspError(f"the run's {split} split has no clips in this folder", root)
    else:
        items = indexed.items
    unknown = sorted({item.label for item in items} - set(classifier.labels))
    if unknown:
        raise DlspError(f"label(s) the model does not know: {', '.join(unknown)} (model labels: "
                        f"{', '.join(classifier.labels)})", root)
    bar = None
    if progress:
        from dlsp.progress import progress_bar

        def bar(paths):
            return progress_bar(paths, desc="features", unit="clip", leave=False)
    cached, _ = cached_features([item.path for item in indexed.items], indexed.root, classifier.sample_rate,
                                classifier.features, cache_dir, bar)
    row_of = {path: row for row, path in enumerate(cached.paths)}
    used = [item for item in items if item.path in row_of]
    if not used:
        raise DlspError("no usable clips to score (all were skipped: " + json.dumps(cached.skipped)[:200] + ")",
                        root)
    features = torch.from_numpy(cached.features[[row_of[item.path] for item in used]])
    frames = getattr(classifier.model, "frames", features.shape[-1])
    if features.shape[-1] != frames:
        raise DlspError(f"clips give {features.shape[-1]} frames per segment, the model expects {frames}", root)
    targets = np.array([classifier.labels.index(item.label) for item in used])
    scores = score(segment_probabilities(classifier.model, features, classifier.device), targets,
                   classifier.labels)
    report = []
    skipped = {**indexed.skipped, **cached.skipped}
    if skipped:
        path, reason = next(iter(skipped.items()))
        report.append(f"skipped {len(skipped)} unusable file(s) of the dataset (e.g. {path}: {reason})")
    note = f"{len(used)} clips ({split} split of {root})" if split != "all" else f"{len(used)} clips (all of {root})"
    return Evaluation(scores, note, report)


def _run_splits(run: str | os.PathLike[str] | None, root: Path) -> dict | None:
    import json

    if run is None:
        return None
    path = Path(run) / "splits.json" if Path(run).is_dir() else Path(run).parent / "splits.json"
    if not path.is_file():
        return None
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return listed if listed.get("root") == str(root.resolve()) else None

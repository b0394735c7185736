"""Classification metrics: thin wrappers over scikit-learn with one rule for labels.

`labels` is the list of class values in display order. When it is omitted, the classes are the sorted
union of the values in `y_true` and `y_pred`. When it is given, a value outside it is an error rather than
being silently dropped (scikit-learn's `confusion_matrix` would ignore it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlsp.errors import DlspError


def accuracy(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray) -> float:
    """Fraction of predictions equal to the truth.

    Shape:
        `(samples,)` and `(samples,)` -> float.
    """
    y_true, y_pred = _validated(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def macro_f1(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | None = None,
) -> float:
    """Unweighted mean of the per-class F1 scores; a class never predicted nor present scores 0.

    Shape:
        `(samples,)` and `(samples,)` -> float.
    """
    from sklearn.metrics import f1_score

    y_true, y_pred = _validated(y_true, y_pred)
    classes = _classes(y_true, y_pred, labels)
    return float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))


def confusion_matrix(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | None = None,
) -> np.ndarray:
    """Counts with rows = true class and columns = predicted class, both in `labels` order.

    Shape:
        `(samples,)` and `(samples,)` -> `(classes, classes)` int64.
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    y_true, y_pred = _validated(y_true, y_pred)
    classes = _classes(y_true, y_pred, labels)
    return sk_confusion_matrix(y_true, y_pred, labels=classes).astype(np.int64)


def classification_summary(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix, JSON-ready.

    Args:
        labels: class values in display order (see the module docstring).
        names: display names for `labels` (same length), e.g. class names when the labels are indices;
            default `str(label)`.

    Returns:
        `{"accuracy", "macro_f1", "labels": [names], "confusion_matrix": [[int]],
        "per_class": {name: {"precision", "recall", "f1", "support"}}}`.
    """
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred = _validated(y_true, y_pred)
    classes = _classes(y_true, y_pred, labels)
    if names is None:
        names = [str(c) for c in classes]
    elif len(names) != len(classes):
        raise DlspError(f"got {len(names)} names for {len(classes)} labels")
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": float(np.mean(f1)),
        "labels": list(names),
        "confusion_matrix": confusion_matrix(y_true, y_pred, classes).tolist(),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
    }


def _validated(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise DlspError(f"y_true and y_pred must be 1-D, got shapes {y_true.shape} and {y_pred.shape}")
    if y_true.size != y_pred.size:
        raise DlspError(f"y_true and y_pred differ in length: {y_true.size} vs {y_pred.size}")
    if y_true.size == 0:
        raise DlspError("no samples to score (y_true and y_pred are empty)")
    return y_true, y_pred


def _classes(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any] | None) -> list[Any]:
    if labels is None:
        return np.union1d(y_true, y_pred).tolist()
    classes = list(labels)
    if not classes:
        raise DlspError("labels is empty")
    if len(set(classes)) != len(classes):
        raise DlspError("labels contains duplicates")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        unknown = np.setdiff1d(values, np.asarray(classes))
        if unknown.size:
            shown = ", ".join(str(v) for v in unknown[:5].tolist())
            raise DlspError(f"{name} contains values not in labels: {shown}")
    return classes

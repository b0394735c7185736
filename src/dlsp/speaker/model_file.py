"""Speaker model files: the encoder plus how to embed and score with it, and an id that databases record.

A model file is a dlsp checkpoint (plain data, loaded with `weights_only=True`) with `task: "speaker"`,
`sample_rate`, `trim_db` (silence trimming used in training, applied again at inference), `threshold` (the
cosine score at the equal error rate on the validation speakers: accept when score >= threshold), `val_eer`,
the training `config`, and `model_id`: a hash of the weights, so a database of embeddings can refuse a
different model.

Files written since issue 22 also hold `window_seconds` and `hop_seconds` (recordings longer than a window are
embedded as the mean of overlapping windows; older files get 3 s and 1.5 s) and `scoring`: `{kind, threshold,
top_k, table}`, the score `dlsp speaker verify` uses (`cosine`, or `asnorm` against `cohort`, a float16 tensor
`(M, D)` of training-speaker embeddings), the threshold on that score and its false-accept/false-reject table
on validation trials (`dlsp.speaker.scoring`). Without `scoring` a file scores by raw cosine at `threshold`.
`scoring` may also hold `narrow: {below_hz, threshold, table}`, the threshold (and its table) for probes whose
effective bandwidth is below `below_hz` (telephone-band audio; `dlsp.speaker.scoring.NarrowbandThreshold`); files
without it judge every probe at the one threshold. And `by_enrolment: [{enrolled, threshold, table, narrow}]`:
thresholds set on speaker models of `enrolled` recordings (`dlsp.speaker.scoring.EnrolmentThresholds`), each
with a narrowband rule exactly when the file has one; files without it judge every person at the one threshold.
The enrolment size of the one threshold's trials is the config's `score.enroll_clips` (`table_enrolment`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.models.speaker import MODELS
from dlsp.paths import PRETRAINED_DIR
from dlsp.speaker.scoring import KINDS, EnrolmentThresholds, NarrowbandThreshold, RateTable, Scorer
from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint, weights_id

DEFAULT_MODEL_NAME = "speaker.pt"
WINDOW_SECONDS, HOP_SECONDS = 3.0, 1.5
MAX_TOP_K = 100_000


@dataclass
class SpeakerModel:
    """A loaded speaker encoder (eval mode, CPU) and what using it needs."""

    model: nn.Module
    name: str
    sample_rate: int
    threshold: float
    model_id: str
    trim_db: float = 40.0
    val_eer: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    window_seconds: float = WINDOW_SECONDS
    hop_seconds: float = HOP_SECONDS
    scorer: Scorer | None = None

    def __post_init__(self) -> None:
        if self.scorer is None:  # files from before scoring was stored: raw cosine at the cosine threshold
            self.scorer = Scorer("cosine", self.threshold)

    @property
    def embedding_dim(self) -> int:
        return int(self.model.embedding_dim)


def save_speaker_model(path: str | os.PathLike[str], model: nn.Module, name: str, *, sample_rate: int,
                       threshold: float, trim_db: float, config: dict[str, Any] | None = None,
                       scorer: Scorer | None = None, window_seconds: float = WINDOW_SECONDS,
                       hop_seconds: float = HOP_SECONDS, **extra: Any) -> Path:
    """Write a speaker model file atomically (its `model_id` is computed from the weights).

    `threshold` is the raw cosine threshold; `scorer` (default: cosine at `threshold`) is what verify uses.
    """
    scorer = scorer or Scorer("cosine", float(threshold))
    scoring = scoring_payload(scorer)
    if scorer.cohort is not None:
        extra["cohort"] = torch.from_numpy(np.asarray(scorer.cohort, dtype=np.float16))
    return save_checkpoint(path, model, name, task="speaker", sample_rate=int(sample_rate),
                           threshold=float(threshold), trim_db=float(trim_db), model_id=weights_id(model),
                           config=config or {}, window_seconds=float(window_seconds),
                           hop_seconds=float(hop_seconds), scoring=scoring, **extra)


def scoring_payload(scorer: Scorer) -> dict[str, Any]:
    """The `scoring` entry of a model file for `scorer` (its cohort is stored beside it, as `cohort`)."""
    scoring: dict[str, Any] = {"kind": scorer.kind, "threshold": float(scorer.threshold),
                               "top_k": int(scorer.top_k), "table": _table_dict(scorer.table)}
    if scorer.narrow is not None:
        scoring["narrow"] = _narrow_dict(scorer.narrow)
    if scorer.by_enrolment:
        scoring["by_enrolment"] = [
            {"enrolled": int(entry.enrolled), "threshold": float(entry.threshold), "table": _table_dict(entry.table),
             "narrow": None if entry.narrow is None else _narrow_dict(entry.narrow)}
            for entry in scorer.by_enrolment]
    return scoring


def _narrow_dict(narrow: NarrowbandThreshold) -> dict[str, Any]:
    return {"below_hz": float(narrow.below_hz), "threshold": float(narrow.threshold),
            "table": _table_dict(narrow.table)}


def _table_dict(table: RateTable | None) -> dict[str, list[float]] | None:
    return None if table is None else table.to_dict()


def load_speaker_model(path: str | os.PathLike[str] | None = None) -> SpeakerModel:
    """Load a speaker model file; `None` loads the default encoder shipped in the package."""
    path = default_model_path() if path is None else Path(path)
    payload = load_checkpoint(path)
    if payload.get("task") != "speaker" or "threshold" not in payload or "sample_rate" not in payload:
        raise DlspError("not a dlsp speaker model file (it holds a different kind of model)", path)
    fields = _checked_fields(payload, path)
    model = build_from_checkpoint(payload, MODELS, path)
    model_id = payload.get("model_id")
    return SpeakerModel(model, payload["model"], fields["sample_rate"], fields["threshold"],
                        model_id if isinstance(model_id, str) and model_id else weights_id(model),
                        fields["trim_db"], fields["val_eer"], fields["config"], path, fields["window_seconds"],
                        fields["hop_seconds"], _checked_scorer(payload, fields, model, path))


def _checked_fields(payload: dict[str, Any], path: Path) -> dict[str, Any]:
    """The model file's settings, type-checked: a damaged or forged file fails here with a DlspError."""
    def number(key: str, default: float | None = None, optional: bool = False) -> float | None:
        value = payload.get(key, default)
        if value is None and optional:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise DlspError(f"model file has a bad {key} {value!r} (expected a finite number)", path)
        return float(value)

    sample_rate, config = payload["sample_rate"], payload.get("config", {})
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise DlspError(f"model file has a bad sample_rate {sample_rate!r} (expected a positive integer)", path)
    if not isinstance(config, dict):
        raise DlspError("model file's 'config' must be a mapping", path)
    window, hop = number("window_seconds", WINDOW_SECONDS), number("hop_seconds", HOP_SECONDS)
    if not (window >= 0 and hop > 0 and (window == 0 or hop <= window)):
        raise DlspError(f"model file has bad windows: window_seconds {window}, hop_seconds {hop} (need "
                        "0 < hop <= window, or window 0 for whole recordings)", path)
    return {"sample_rate": sample_rate, "threshold": number("threshold"), "trim_db": number("trim_db", 40.0),
            "val_eer": number("val_eer", optional=True), "config": config, "window_seconds": window,
            "hop_seconds": hop}


def _finite(value: object) -> TypeGuard[int | float]:
    """A finite int or float (not a bool, which is an int to Python; not an int too large for a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # a pickled int beyond float range
        return False


def _checked_table(data: object, what: str, path: Path) -> RateTable | None:
    try:
        return None if data is None else RateTable.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise DlspError(f"model file has a bad {what} ({exc})", path) from None


def _checked_scorer(payload: dict[str, Any], fields: dict[str, Any], model: nn.Module, path: Path) -> Scorer:
    """The stored scoring (cosine at the cosine threshold when absent), checked field by field."""
    scoring = payload.get("scoring")
    if scoring is None:
        return Scorer("cosine", fields["threshold"])
    if not isinstance(scoring, dict) or scoring.get("kind") not in KINDS:
        raise DlspError(f"model file has a bad 'scoring' (expected a mapping with kind one of {KINDS})", path)
    threshold, top_k = scoring.get("threshold"), scoring.get("top_k", 100)
    if not _finite(threshold):
        raise DlspError(f"model file has a bad scoring threshold {threshold!r}", path)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise DlspError(f"model file has a bad scoring top_k {top_k!r}", path)
    table = _checked_table(scoring.get("table"), "scoring table", path)
    narrow = _checked_narrow(scoring.get("narrow"), fields["sample_rate"], path)
    cohort = None
    if scoring["kind"] == "asnorm":
        cohort = payload.get("cohort")
        dim = int(model.embedding_dim)
        if not isinstance(cohort, torch.Tensor) or cohort.ndim != 2 or cohort.shape[1] != dim or \
                cohort.shape[0] < 1 or not torch.isfinite(cohort.float()).all():
            raise DlspError(f"model file's cohort must be a finite (M, {dim}) tensor for AS-norm scoring", path)
        cohort = cohort.float().numpy()
    by_enrolment = _checked_by_enrolment(scoring.get("by_enrolment", []), narrow is not None,
                                         fields["sample_rate"], path)
    return Scorer(scoring["kind"], float(threshold), cohort, top_k, table, narrow, table_enrolment(fields["config"]),
                  by_enrolment)


def table_enrolment(config: dict[str, Any]) -> int | None:
    """How many recordings each speaker model held in the validation trials that measured a model file's one
    threshold and its rate tables: the recipe's `score.enroll_clips`, 1 for pairs of single recordings; None
    when the file's config does not say. People enrolled with more recordings are rejected less often and, at
    the same threshold, accepted as impostors a little more often (benchmarks/speaker.py, by enrolment size)."""
    score = config.get("score")
    if not isinstance(score, dict) or not isinstance(score.get("enroll_clips"), int) or \
            isinstance(score["enroll_clips"], bool):
        return None
    return max(1, score["enroll_clips"])


def _checked_by_enrolment(entries: object, has_narrow: bool, sample_rate: int, path: Path
                          ) -> tuple[EnrolmentThresholds, ...]:
    """The stored thresholds by enrolment size, checked entry by entry: distinct sizes of at least 1, and a
    narrowband rule in each exactly when the file has one (else a narrowband probe would meet a wideband
    threshold for some people)."""
    if not isinstance(entries, list):
        raise DlspError("model file has a bad scoring 'by_enrolment' (expected a list)", path)
    out: list[EnrolmentThresholds] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise DlspError("model file has a bad scoring 'by_enrolment' entry (expected a mapping with enrolled, "
                            "threshold, table and narrow)", path)
        enrolled, threshold = entry.get("enrolled"), entry.get("threshold")
        if not isinstance(enrolled, int) or isinstance(enrolled, bool) or enrolled < 1 or \
                any(e.enrolled == enrolled for e in out):
            raise DlspError(f"model file has a bad enrolment size {enrolled!r} in scoring 'by_enrolment' (expected "
                            "distinct whole numbers of recordings, each at least 1)", path)
        if not _finite(threshold):
            raise DlspError(f"model file has a bad threshold {threshold!r} for speaker models of {enrolled} "
                            "recordings", path)
        narrow = _checked_narrow(entry.get("narrow"), sample_rate, path)
        if (narrow is not None) != has_narrow:
            raise DlspError(f"model file's thresholds for speaker models of {enrolled} recordings "
                            f"{'lack' if has_narrow else 'have'} a narrowband rule the file "
                            f"{'has' if has_narrow else 'lacks'}", path)
        table = _checked_table(entry.get("table"), f"rate table for speaker models of {enrolled} recordings", path)
        out.append(EnrolmentThresholds(enrolled, float(threshold), table, narrow))
    return tuple(out)


def _checked_narrow(narrow: object, sample_rate: int, path: Path) -> NarrowbandThreshold | None:
    """The stored narrowband rule (None when absent), checked field by field: `below_hz` must lie inside the
    model's band, or every probe (or none) would count as narrowband."""
    if narrow is None:
        return None
    if not isinstance(narrow, dict):
        raise DlspError("model file has a bad scoring 'narrow' (expected a mapping with below_hz, threshold and "
                        "table)", path)
    below_hz, threshold = narrow.get("below_hz"), narrow.get("threshold")
    if not _finite(below_hz) or not 0 < below_hz < sample_rate / 2:
        raise DlspError(f"model file has a bad narrowband below_hz {below_hz!r} (expected a frequency between 0 "
                        f"and {sample_rate / 2:g} Hz)", path)
    if not _finite(threshold):
        raise DlspError(f"model file has a bad narrowband threshold {threshold!r}", path)
    table = _checked_table(narrow.get("table"), "narrowband table", path)
    return NarrowbandThreshold(float(below_hz), float(threshold), table)


def default_model_path() -> Path:
    """The default pretrained speaker encoder shipped with dlsp."""
    path = PRETRAINED_DIR / DEFAULT_MODEL_NAME
    if not path.exists():
        raise DlspError("no default speaker encoder is installed; pass --model MODEL (train one with "
                        "'dlsp speaker train')", path)
    return path


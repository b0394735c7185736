"""Training clip classifiers: config, data loading with a report, batches, the run folder, resume.

A run folder holds `config.yaml`, `metrics.jsonl` (one line per epoch: losses, validation segment and clip
accuracy), `best.pt` (the model file, best validation loss), `last.pt` (everything needed to resume),
`curves.png` (loss and accuracy), `splits.json` (the clips of each split), `results.json` (test scores when there
is a test split) and `confusion.png` (test confusion matrix).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlsp.classify.augment import AugmentSection, NoiseMixer, spec_masks, time_shift
from dlsp.classify.data import DataSection, common_rate, index_clips, split_clips
from dlsp.classify.evaluate import confusion_plot, score
from dlsp.classify.features import FeatureConfig, cached_features, fixed_length
from dlsp.classify.inference import segment_probabilities
from dlsp.config import to_dict
from dlsp.errors import DlspError
from dlsp.models.classifiers import MfccClassifier, build_classifier
from dlsp.models.lowrank import count_parameters
from dlsp.train.checkpoint import load_checkpoint, save_checkpoint
from dlsp.train.loop import FitResult
from dlsp.train.run import Training, TrainSection, make_optimizer, train_in_folder
from dlsp.train.tracking import Tracker


@dataclass(frozen=True)
class ModelSection:
    name: str = "cnn"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassifyTrainSection(TrainSection):
    lr: float = 1e-4
    epochs: int = 50
    patience: int | None = 10
    weight_decay: float = 0.0
    grad_clip: float | None = None


@dataclass(frozen=True)
class ClassifyConfig:
    """Everything that defines a classifier training run (a recipe fills it)."""

    model: ModelSection = field(default_factory=ModelSection)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    train: ClassifyTrainSection = field(default_factory=ClassifyTrainSection)


@dataclass
class ClipSet:
    """The clips of one split: features `(clips, n_segments, n_mfcc, frames)` and class indices `(clips,)`."""

    paths: list[Path]
    features: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.paths)

    def segments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every segment with its clip's class: `(clips * n_segments, n_mfcc, frames)`, `(clips * n_segments,)`."""
        n_segments = self.features.shape[1]
        return self.features.reshape(-1, *self.features.shape[2:]), self.targets.repeat_interleave(n_segments)


@dataclass
class ClassifyData:
    """Features of the train, val and test clips, the class labels and what happened on the way."""

    sets: dict[str, ClipSet]
    labels: list[str]
    sample_rate: int
    root: Path
    format: str
    report: list[str]
    skipped: dict[str, str]
    from_cache: bool
    waveforms: np.ndarray | None = None  # training clips as fixed-length audio, for noise augmentation


def load_data(config: ClassifyConfig, root: str | os.PathLike[str], format: str = "auto",
              cache_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> ClassifyData:
    """Index, split and featurise a labelled dataset; every clip left out is counted in `report`."""
    config.features.check()
    indexed = index_clips(root, format)
    splits, split_note = split_clips(indexed.items, config.data)
    rates = Counter(item.sample_rate for item in indexed.items)
    sample_rate = config.features.sample_rate or common_rate(splits["train"] or indexed.items)
    report = [f"{len(indexed.items)} clips in {len(indexed.labels)} classes ({indexed.format} layout, {root})"]
    bar = _progress("features", progress)
    cached, from_cache = cached_features([item.path for item in indexed.items], indexed.root, sample_rate,
                                         config.features, cache_dir, bar)
    skipped = {**indexed.skipped, **cached.skipped}
    if skipped:
        reasons = Counter(reason.split(":")[0] for reason in skipped.values())
        example = next(iter(skipped.items()))
        report.append(f"skipped {len(skipped)} file(s): " + ", ".join(f"{n} {r}" for r, n in reasons.items())
                      + f" (e.g. {example[0]}: {example[1]})")
    if len(rates) > 1 or cached.resampled:
        moved = sum(cached.resampled.values())
        report.append(f"mixed sample rates {', '.join(f'{r} Hz x {n}' for r, n in sorted(rates.items()))}: "
                      f"{moved} clip(s) resampled to {sample_rate} Hz")
    elif sample_rate not in rates:
        report.append(f"all clips resampled from {next(iter(rates))} Hz to {sample_rate} Hz")
    if cached.features.shape[0] == 0:
        raise DlspError("no usable clips: " + "; ".join(report[1:]), root)
    row_of = {path: row for row, path in enumerate(cached.paths)}
    labels = _checked_labels(indexed.labels, splits, row_of, indexed.root)
    index_of = {label: i for i, label in enumerate(labels)}
    sets = {}
    for name, items in splits.items():
        used = [item for item in items if item.path in row_of]
        rows = [row_of[item.path] for item in used]
        sets[name] = ClipSet([item.path for item in used], torch.from_numpy(cached.features[rows]),
                             torch.tensor([index_of[item.label] for item in used], dtype=torch.long))
    report.append(split_note + (f" ({sum(len(s) for s in sets.values())} usable)" if skipped else ""))
    report.append(f"features: {config.features.n_segments} segment(s) x {config.features.n_mfcc} MFCCs x "
                  f"{cached.features.shape[-1]} frames at {sample_rate} Hz"
                  + (" (from the cache)" if from_cache else ""))
    data = ClassifyData(sets, labels, sample_rate, indexed.root, indexed.format, report, skipped, from_cache)
    if config.augment.noise_dir:
        data.waveforms = _fixed_waveforms(sets["train"].paths, sample_rate, config.features)
    return data


def _checked_labels(all_labels: list[str], splits: dict, row_of: dict, root: Path) -> list[str]:
    usable = Counter(item.label for items in splits.values() for item in items if item.path in row_of)
    empty = [label for label in all_labels if not usable[label]]
    if empty:
        raise DlspError(f"class(es) with no usable audio: {', '.join(empty)} (every clip was skipped)", root)
    in_train = {item.label for item in splits["train"] if item.path in row_of}
    missing = [label for label in all_labels if label not in in_train]
    if missing:
        raise DlspError(f"class(es) with no training clips after the split: {', '.join(missing)}", root)
    if len(all_labels) < 2:
        raise DlspError(f"classification needs at least 2 classes with usable audio, found {len(all_labels)}", root)
    return list(all_labels)


def _fixed_waveforms(paths: list[Path], sample_rate: int, features: FeatureConfig) -> np.ndarray:
    from dlsp.audio.io import load_audio

    return np.stack([fixed_length(load_audio(p, sample_rate, allow_silent=True)[0], sample_rate, features)
                     for p in paths])


def _progress(desc: str, enabled: bool) -> Callable | None:
    if not enabled:
        return None
    from dlsp.progress import progress_bar

    return lambda items: progress_bar(items, desc=desc, unit="clip", leave=False)


class BatchMaker:
    """Shuffled training batches of segments, augmented as configured, reproducible per (seed, epoch)."""

    def __init__(self, data: ClassifyData, config: ClassifyConfig, mean: torch.Tensor) -> None:
        self.train = data.sets["train"]
        self.x, self.y = self.train.segments()
        self.n_segments = self.train.features.shape[1]
        self.augment, self.seed, self.mean = config.augment, config.train.seed, mean
        self.mixer = (NoiseMixer(data.waveforms, data.sample_rate, config.features, config.augment)
                      if config.augment.noise_dir else None)

    def __call__(self, epoch: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        rng = np.random.default_rng([self.seed, epoch])
        order = torch.randperm(len(self.y), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            yield self._augmented(index, generator, rng), self.y[index]

    def _augmented(self, index: torch.Tensor, generator: torch.Generator,
                   rng: np.random.Generator) -> torch.Tensor:
        if self.mixer is not None:
            clips, segment = (index // self.n_segments).numpy(), index % self.n_segments
            x = self.mixer.segments(clips, rng)[torch.arange(len(index)), segment]
        else:
            x = self.x[index]
        if self.augment.time_shift:
            x = time_shift(x, self.augment.time_shift, generator)
        if self.augment.freq_masks or self.augment.time_masks:
            x = spec_masks(x, self.mean, self.augment, generator)
        return x


def make_step(device: torch.device) -> Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """The step function of the training loop: `(model, (features, targets)) -> cross-entropy loss`."""
    loss_fn = nn.CrossEntropyLoss()

    def step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return loss_fn(model(batch[0].to(device)), batch[1].to(device))

    return step


def build_model(config: ClassifyConfig, data: ClassifyData) -> MfccClassifier:
    """The configured classifier for `data`'s feature shape and classes, its normaliser fitted on train."""
    torch.manual_seed(config.train.seed)
    x, _ = data.sets["train"].segments()
    model = build_classifier(config.model.name, n_mfcc=x.shape[1], frames=x.shape[2], n_classes=len(data.labels),
                             **config.model.args)
    model.fit_normalizer(x)
    return model


def validation_scores(model: nn.Module, clips: ClipSet, labels: list[str], device: torch.device) -> dict[str, float]:
    """Validation segment and clip accuracy, for the per-epoch history."""
    scores = score(segment_probabilities(model, clips.features, device), clips.targets.numpy(), labels)
    return {"val_accuracy": scores["accuracy"], "val_clip_accuracy": scores["clip_accuracy"]}


def train_run(config: ClassifyConfig, data: ClassifyData, out: str | os.PathLike[str], resume: bool = False,
              overwrite: bool = False, progress: bool = True, log: Callable[[str], None] = print,
              tracker: Tracker | None = None, inputs: dict[str, Any] | None = None
              ) -> tuple[nn.Module, FitResult, dict]:
    """Train into the run folder `out` (`dlsp.train.run.train_in_folder`: resuming from `out/last.pt`, or over a
    previous run with `overwrite`). `inputs`: the data location, kept in the run folder for `--resume`.

    Returns the best model, the fit result and the results written to `results.json` (empty on ranks other than 0:
    rank 0 alone scores the test split).
    """
    out = Path(out)

    def setup(device: torch.device) -> Training:
        if len(data.sets["train"]) == 0:
            raise DlspError("the training split is empty")
        model = build_model(config, data).to(device)
        val = data.sets["val"] if len(data.sets["val"]) else data.sets["train"]
        x, y = val.segments()
        val_batches = [(x[i:i + 256], y[i:i + 256]) for i in range(0, len(y), 256)]
        batches = BatchMaker(data, config, model.mean.detach().cpu())
        meta = _model_meta(config, data)

        def save_best(record: dict[str, float]) -> None:
            save_checkpoint(out / "best.pt", model, config.model.name, epoch=int(record["epoch"]), **meta)

        def load_best() -> nn.Module:  # after a resume the weights in memory may be a later epoch's
            model.load_state_dict(load_checkpoint(out / "best.pt")["state_dict"])
            return model

        return Training(
            model, make_optimizer(model.parameters(), config.train.lr, config.train.weight_decay), make_step(device),
            lambda epoch: batches(epoch, config.train.batch_size), save_best,
            lambda best, result, record: _finish(out, best, result, record, config, data, device),
            f"training {config.model.name} ({count_parameters(model):,} parameters) on {device}",
            val_batches=lambda: iter(val_batches), val_metrics=lambda m: validation_scores(m, val, data.labels, device),
            load_best=load_best)

    splits = {"root": str(data.root.resolve()), "format": data.format, "labels": data.labels,
              "sample_rate": data.sample_rate, **{name: [str(p) for p in clips.paths]
                                                  for name, clips in data.sets.items()}, "skipped": data.skipped}
    model, result, results = train_in_folder(out, config, setup, splits=splits,
                                             artifacts=("curves.png", "confusion.png"), resume=resume,
                                             overwrite=overwrite, progress=progress, log=log, tracker=tracker,
                                             inputs=inputs)
    return model, result, results or {}


def _model_meta(config: ClassifyConfig, data: ClassifyData) -> dict[str, Any]:
    return {"task": "classify", "labels": list(data.labels), "features": to_dict(config.features),
            "sample_rate": data.sample_rate, "config": to_dict(config)}


def _finish(out: Path, model: nn.Module, result: FitResult, best: dict[str, float], config: ClassifyConfig,
            data: ClassifyData, device: torch.device) -> dict[str, Any]:
    """results.json's figures (test scores when there is a test split), curves.png and confusion.png."""
    from dlsp.classify.plots import training_curves

    results: dict[str, Any] = {
        "model": config.model.name, "train_seconds": result.seconds, "val_loss": result.best_val_loss,
        "val_accuracy": best.get("val_accuracy"), "val_clip_accuracy": best.get("val_clip_accuracy"),
        "clips": {name: len(clips) for name, clips in data.sets.items()}, "skipped": len(data.skipped),
    }
    test = data.sets["test"]
    if len(test):
        scores = score(segment_probabilities(model, test.features, device), test.targets.numpy(), data.labels)
        results["test"] = scores
        confusion_plot(out / "confusion.png", scores["confusion_matrix"], data.labels,
                       f"{config.model.name}: test clips, accuracy {scores['clip_accuracy']:.1%}")
    training_curves(out / "curves.png", result.history, title=f"{config.model.name} classifier")
    return results

"""Training speaker encoders: config, data loading, the step of each objective, run folders, resume.

The best epoch is the one with the lowest validation EER on the validation speakers (unseen in training): every
epoch records each corpus's EER over pairs of its validation clips (`val_eer_<corpus>`), their mean `val_eer`
(what picks the epoch) and `val_threshold`, the cosine score where the corpus-averaged false-accept and
false-reject rates are equal (`dlsp.speaker.validation`). `best.pt` is the model file of that epoch.

When training ends, the best model's scoring is settled (`score` section, `calibrate_scoring`): with
`score.cohort`, a cohort of training-speaker embeddings (float16 in the model file) for AS-norm scores; the
threshold on the model's score at the corpus-averaged validation EER (or at `score.target_far`); and the
validation false-accept/false-reject table, so `dlsp speaker verify` can say what the threshold means; for models
at 12.5 kHz or more also the threshold for telephone-band probes, set on the validation clips low-passed at 4 kHz
(`narrowband_threshold`). The model file keeps the cosine threshold beside them. A run folder holds `config.yaml`,
`splits.json` (speakers per split), `metrics.jsonl`, `best.pt`, `last.pt` (to resume), `curves.png` and
`results.json`.

The learning rate follows a cosine from `lr` down to `lr * 0.05` over `train.epochs`; it is set from the epoch
number at the start of every epoch, so a resumed run follows the same schedule.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlsp.config import to_dict
from dlsp.errors import DlspError
from dlsp.models.lowrank import count_parameters
from dlsp.models.speaker import MODELS
from dlsp.speaker.data import (
    SegmentSampler,
    SpeakerClips,
    SpeakerDataConfig,
    assign_splits,
    check_augmentation,
    index_speakers,
    limit_per_speaker,
    load_clips,
    perturb_speed,
)
from dlsp.speaker.model_file import load_speaker_model, save_speaker_model
from dlsp.speaker.objectives import (
    GROUPED_OBJECTIVES,
    OBJECTIVES,
    PAIR_OBJECTIVES,
    AmSoftmaxGe2eLoss,
    AmSoftmaxLoss,
    EncoderWithLoss,
    Ge2eLoss,
    PairLoss,
)
from dlsp.speaker.scoring import Scorer
from dlsp.speaker.validation import (  # noqa: F401  (embed_clips, validation_eer: part of this module's API)
    ScoreSection,
    calibrate_scoring,
    check_score,
    embed_clips,
    scoring_line,
    validation_eer,
)
from dlsp.train.loop import FitResult
from dlsp.train.run import Training, TrainSection, make_optimizer, train_in_folder
from dlsp.train.tracking import Tracker

MIN_LR_FRACTION = 0.05


@dataclass(frozen=True)
class ModelSection:
    name: str = "gru"
    args: dict[str, Any] = field(default_factory=lambda: {
        "features": "stft", "n_fft": 1024, "hop_length": 256, "hidden": 256, "embedding_dim": 256,
        "pooling": "attention"})


@dataclass(frozen=True)
class SpeakerTrainSection(TrainSection):
    batch_size: int = 64
    patience: int | None = 10
    objective: str = "amsoftmax"
    grad_clip: float | None = 5.0
    am_scale: float = 30.0
    am_margin: float = 0.2
    contrastive_margin: float = 0.3
    per_speaker: int = 4  # segments of each speaker in a batch (ge2e objectives)


@dataclass(frozen=True)
class SpeakerTrainConfig:
    """Everything that defines a speaker-encoder training run (a recipe fills it)."""

    model: ModelSection = field(default_factory=ModelSection)
    data: SpeakerDataConfig = field(default_factory=SpeakerDataConfig)
    train: SpeakerTrainSection = field(default_factory=SpeakerTrainSection)
    score: ScoreSection = field(default_factory=ScoreSection)


@dataclass
class SpeakerData:
    """Training clips (speed-perturbed), validation clips, and the speaker of every split."""

    train: SpeakerClips
    val: SpeakerClips
    splits: dict[str, list[str]]


def load_data(config: SpeakerTrainConfig, roots: Sequence[str | os.PathLike[str]], format: str = "auto",
              progress: bool = True) -> SpeakerData:
    """Index the datasets, split speakers, decode the train and validation clips."""
    if config.train.objective not in OBJECTIVES:
        raise DlspError(f"unknown objective {config.train.objective!r} (valid: {', '.join(OBJECTIVES)})")
    per_speaker, batch_size = config.train.per_speaker, config.train.batch_size
    if config.train.objective in GROUPED_OBJECTIVES and (per_speaker < 2 or batch_size // per_speaker < 2):
        raise DlspError(f"train.objective={config.train.objective} needs train.per_speaker >= 2 and a batch of at "
                        f"least 2 speakers, got per_speaker {per_speaker} and batch_size {batch_size}")
    check_augmentation(config.data)
    check_score(config.score)
    indexed = index_speakers(roots, format)
    split_of = assign_splits(indexed, config.data, config.train.seed)
    splits = {name: sorted(k for k, s in split_of.items() if s == name) for name in ("train", "val", "test")}
    for name in ("train", "val"):
        needed = 2
        if len(splits[name]) < needed:
            raise DlspError(f"the {name} split has {len(splits[name])} speaker(s), needs at least {needed} "
                            "(add speakers, or change data.val_fraction / data.val_speakers)")
    sr, trim = config.data.sample_rate, config.data.trim_db
    train = load_clips([(k, i) for k, i in indexed if split_of[k] == "train"], sr, trim, progress, "train clips")
    val = load_clips([(k, i) for k, i in indexed if split_of[k] == "val"], sr, trim, progress, "val clips")
    val = limit_per_speaker(val, config.data.max_val_clips_per_speaker, config.train.seed)
    train = perturb_speed(train, config.data.speed_perturb, sr)
    return SpeakerData(train, val, splits)


def build_encoder(config: SpeakerTrainConfig) -> nn.Module:
    if config.model.name not in MODELS:
        raise DlspError(f"unknown speaker model {config.model.name!r} (known: {', '.join(sorted(MODELS))})")
    try:
        return MODELS[config.model.name](sample_rate=config.data.sample_rate, **config.model.args)
    except (TypeError, ValueError) as exc:
        raise DlspError(f"bad model.args: {exc}") from None


def build_loss(config: SpeakerTrainConfig, n_speakers: int, dim: int) -> nn.Module:
    train = config.train
    if train.objective == "amsoftmax":
        return AmSoftmaxLoss(n_speakers, dim, train.am_scale, train.am_margin)
    if train.objective == "ge2e":
        return Ge2eLoss(train.per_speaker)
    if train.objective == "amsoftmax_ge2e":
        return AmSoftmaxGe2eLoss(n_speakers, dim, train.per_speaker, train.am_scale, train.am_margin)
    return PairLoss(train.objective, train.contrastive_margin)


def make_step(objective: str, device: torch.device):
    """The training loop's step: `(EncoderWithLoss, batch) -> loss` for pair or class batches."""

    def step(wrapped: nn.Module, batch: tuple) -> torch.Tensor:
        if objective in PAIR_OBJECTIVES:
            first, second, same = (torch.from_numpy(part).to(device) for part in batch)
            embeddings = wrapped.encoder(torch.cat([first, second]))
            return wrapped.loss(embeddings[: len(first)], embeddings[len(first):], same)
        segments, labels = torch.from_numpy(batch[0]).to(device), torch.from_numpy(batch[1]).to(device)
        return wrapped.loss(wrapped.encoder(segments), labels)

    return step


def lr_at(config: SpeakerTrainSection, epoch: int) -> float:
    """Cosine schedule from `lr` to `lr * MIN_LR_FRACTION` over the configured epochs."""
    progress = min(1.0, epoch / max(1, config.epochs - 1))
    return config.lr * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_run(config: SpeakerTrainConfig, data: SpeakerData, out: str | os.PathLike[str], resume: bool = False,
              overwrite: bool = False, progress: bool = True, log=print,
              tracker: Tracker | None = None, inputs: dict[str, Any] | None = None) -> tuple[nn.Module, FitResult]:
    """Train into the run folder `out` (`dlsp.train.run.train_in_folder`: resuming from `out/last.pt`, or over a
    previous run with `overwrite`); returns the best encoder. `inputs`: the data folders, kept in the run folder
    for `--resume`."""
    out, sr = Path(out), config.data.sample_rate
    objective, seed, batch_size = config.train.objective, config.train.seed, config.train.batch_size

    def save_best(model: nn.Module, record: dict[str, float], scorer: Scorer | None = None) -> None:
        save_speaker_model(out / "best.pt", model, config.model.name, sample_rate=sr,
                           threshold=record["val_threshold"], trim_db=config.data.trim_db, config=to_dict(config),
                           scorer=scorer, window_seconds=config.score.window_seconds,
                           hop_seconds=config.score.hop_seconds, val_eer=record["val_eer"],
                           epoch=int(record["epoch"]))

    def setup(device: torch.device) -> Training:
        torch.manual_seed(seed)
        encoder = build_encoder(config)
        sampler = SegmentSampler(data.train, config.data, seed)
        encoder.fit_normalizer(torch.from_numpy(np.stack(
            [sampler.cut(int(i), np.random.default_rng(seed + i)) for i in range(min(256, len(data.train)))])))
        wrapped = EncoderWithLoss(encoder, build_loss(config, len(data.train.speakers), encoder.view_dim))
        wrapped.to(device)
        optimizer = make_optimizer(wrapped.parameters(), config.train.lr)
        segments, per_speaker = config.data.segments_per_epoch, config.train.per_speaker

        def train_batches(epoch: int):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(config.train, epoch)
            if objective in PAIR_OBJECTIVES:
                return sampler.pair_batches(seed, epoch, segments // 2, max(1, batch_size // 2))
            if objective in GROUPED_OBJECTIVES:
                return sampler.grouped_batches(seed, epoch, segments, batch_size // per_speaker, per_speaker)
            return sampler.class_batches(seed, epoch, segments, batch_size)

        def finish(best: nn.Module, result: FitResult, record: dict[str, float]) -> dict[str, Any]:
            scorer, scoring = calibrate_scoring(best, data.train, data.val, config.score, device, sr, seed)
            save_best(best, record, scorer)
            log(scoring_line(scoring))
            training_curves(out / "curves.png", result.history, f"{config.model.name} speaker encoder, {objective}")
            return {"val_eer": record.get("val_eer"), "val_threshold": record.get("val_threshold"),
                    **{k: v for k, v in record.items() if k.startswith("val_eer_")}, **scoring,
                    "objective": objective, "model": config.model.name, "seconds": result.seconds}

        def val_metrics(model: nn.Module) -> dict[str, float]:
            # The epoch's learning rate (set by train_batches) goes into its record beside the validation figures.
            return {**validation_eer(model.encoder, data.val, device, config.score, sr),
                    "lr": optimizer.param_groups[0]["lr"]}

        return Training(
            wrapped, optimizer, make_step(objective, device), train_batches,
            lambda record: save_best(encoder, record), finish,
            f"training a {config.model.name} speaker encoder ({count_parameters(encoder):,} parameters, {objective}) "
            f"on {device}: {len(data.train)} clips of {len(data.train.speakers)} training speakers (with speed "
            f"copies), validation {len(data.val)} clips of {len(data.val.speakers)} speakers",
            val_metrics=val_metrics, monitor="val_eer",
            load_best=lambda: load_speaker_model(out / "best.pt").model.to(device))

    best, result, _ = train_in_folder(out, config, setup, splits=data.splits, artifacts=("curves.png",),
                                      resume=resume, overwrite=overwrite, progress=progress, log=log,
                                      tracker=tracker, inputs=inputs)
    return best, result


def training_curves(path: str | os.PathLike[str], history: Sequence[dict[str, float]], title: str = "") -> Path:
    """Training loss and validation EER against epochs, side by side."""
    from dlsp.report.plots import _figure, _save, curve_marker

    plt, fig, axes = _figure(1, 2, (10, 3.5))
    epochs = [h["epoch"] + 1 for h in history]
    marker = curve_marker(len(epochs))  # a one-epoch run still shows its point
    axes[0, 0].plot(epochs, [h["train_loss"] for h in history], marker=marker)
    axes[0, 0].set_ylabel("training loss")
    axes[0, 1].plot(epochs, [100 * h["val_eer"] for h in history], color="tab:red", marker=marker)
    axes[0, 1].set_ylabel("validation EER (%)")
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(plt, fig, path)

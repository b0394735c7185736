"""The configuration of a vision study: one frozen dataclass that every recipe fills."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dlsp.errors import DlspError
from dlsp.train.run import TrainSection

STUDIES = ("mnist_mlp", "compression", "cifar_augment", "ssl")


@dataclass(frozen=True)
class DataSection:
    """Where images come from. `source`: digits (embedded), mnist (IDX folder), cifar10 (python batches or
    image folders), or auto (guessed from the folder). `dir` is the dataset folder (`--data`)."""

    source: str = "digits"
    dir: str | None = None
    train_limit: int | None = None  # seeded random subset of the training images (CIFAR on 2 cores)
    test_limit: int | None = None
    val_fraction: float = 0.1  # held out of train to pick the best epoch; the test set is only for the end
    seed: int = 0


@dataclass(frozen=True)
class ModelSection:
    name: str = "mlp"
    args: dict[str, Any] = field(default_factory=lambda: {"hidden": [1024] * 5, "dropout": 0.2})


@dataclass(frozen=True)
class VisionTrainSection(TrainSection):
    batch_size: int = 128
    epochs: int = 20
    select: str = "accuracy"  # pick the best epoch by validation accuracy or by validation loss
    threads: int | None = None  # torch CPU threads (None: torch's default)
    lr_schedule: str = "constant"  # or "cosine": decay towards 0 over the epochs (not in the studies)


@dataclass(frozen=True)
class AnalysisSection:
    """MNIST MLP study: activation views of the test set."""

    pca_samples: int = 5000
    tsne_samples: int = 1000  # t-SNE is quadratic-ish: subsample
    tsne_perplexity: float = 30.0
    tsne_iterations: int = 1000


@dataclass(frozen=True)
class CompressionSection:
    rank: int = 20
    ranks: tuple[int, ...] = (5, 10, 20, 50, 100, 0)  # 0 = full rank (the baseline)
    finetune_epochs: int = 3
    finetune_lr: float = 1e-4
    scratch_epochs: int = 20
    base_model: str | None = None  # reuse a trained model file instead of training the baseline
    timing_repeats: int = 20


@dataclass(frozen=True)
class AugmentSection:
    brightness: float = 0.25  # added to / subtracted from pixel values in [0, 1]
    on_the_fly: bool = True
    examples: int = 6


@dataclass(frozen=True)
class SslSection:
    pretext: str = "flip_rot"  # flip_rot: original / vertical flip / rot90; rotnet: 0/90/180/270 degrees
    pretext_epochs: int = 10
    pretext_lr: float = 1e-3
    pretext_all_views: bool = False  # every image under every pretext view in the same batch (RotNet)
    pretext_hflip: float = 0.0  # probability of a left-right flip before the pretext view (augmentation)
    pretext_model: str | None = None  # a pretext.pt of an earlier run: transfer only, no pretext training
    unlabelled_limit: int | None = None
    labelled: int = 500
    transfer_epochs: int = 100
    transfer_stages: int | None = None  # keep only the first N pretrained CNN stages (None: the whole trunk)
    pretrained_lr: float = 1e-5
    head_lr: float = 1e-3
    eval_every: int = 5


@dataclass(frozen=True)
class VisionConfig:
    """Everything that defines a vision study run (a recipe fills it)."""

    study: str = "mnist_mlp"
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: VisionTrainSection = field(default_factory=VisionTrainSection)
    analysis: AnalysisSection = field(default_factory=AnalysisSection)
    compression: CompressionSection = field(default_factory=CompressionSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    ssl: SslSection = field(default_factory=SslSection)


def validate(config: VisionConfig) -> VisionConfig:
    """Check the values no type check catches."""
    if config.study not in STUDIES:
        raise DlspError(f"unknown study {config.study!r} (known: {', '.join(STUDIES)})")
    if config.data.source not in ("digits", "mnist", "cifar10", "auto"):
        raise DlspError(f"unknown data.source {config.data.source!r} (digits, mnist, cifar10 or auto)")
    if not 0 < config.data.val_fraction < 1:
        raise DlspError(f"data.val_fraction must be between 0 and 1, got {config.data.val_fraction}")
    if config.train.select not in ("accuracy", "loss"):
        raise DlspError(f"train.select must be accuracy or loss, got {config.train.select!r}")
    if config.train.lr_schedule not in ("constant", "cosine"):
        raise DlspError(f"train.lr_schedule must be constant or cosine, got {config.train.lr_schedule!r}")
    if not 0 <= config.ssl.pretext_hflip <= 1:
        raise DlspError(f"ssl.pretext_hflip is a probability in [0, 1], got {config.ssl.pretext_hflip}")
    if config.ssl.pretext not in ("flip_rot", "rotnet"):
        raise DlspError(f"ssl.pretext must be flip_rot or rotnet, got {config.ssl.pretext!r}")
    positive = {"train.epochs": config.train.epochs, "train.batch_size": config.train.batch_size,
                "compression.rank": config.compression.rank, "ssl.labelled": config.ssl.labelled,
                "ssl.eval_every": config.ssl.eval_every}
    for key, value in positive.items():
        if value < 1:
            raise DlspError(f"{key} must be a positive integer, got {value}")
    return config


def quick(config: VisionConfig) -> VisionConfig:
    """The same study shrunk to the embedded digits and a few epochs of a small model (smoke runs, tests)."""
    args = dict(config.model.args)
    if config.model.name == "mlp":
        args["hidden"] = [min(int(h), 128) for h in args.get("hidden", [128])]
    else:
        args["channels"] = [min(int(c), 16) for c in args.get("channels", [16, 16])]
        args["dense"] = min(int(args.get("dense", 32)), 32)
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, source="digits", dir=None, train_limit=None, test_limit=None),
        model=dataclasses.replace(config.model, args=args),
        # Tiny models gain nothing from threads, and on a busy machine extra threads only spin.
        train=dataclasses.replace(config.train, epochs=min(config.train.epochs, 12), max_seconds=None, patience=None,
                                  threads=1),
        analysis=dataclasses.replace(config.analysis, pca_samples=300, tsne_samples=120, tsne_perplexity=10.0,
                                     tsne_iterations=250),
        compression=dataclasses.replace(config.compression, ranks=(5, 20, 0), finetune_epochs=2, scratch_epochs=12,
                                        base_model=None, timing_repeats=2),
        augment=dataclasses.replace(config.augment, examples=3),
        ssl=dataclasses.replace(config.ssl, pretext_epochs=4, transfer_epochs=20, eval_every=5,
                                labelled=min(config.ssl.labelled, 300), unlabelled_limit=None),
    )

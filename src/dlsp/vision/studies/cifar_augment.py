"""Study 3: data augmentation for a small CNN on CIFAR-10.

The same network (2 conv layers + dense) trained three ways for the same number of epochs: on the original set,
on the materialised 4x set (original, brightened, darkened, horizontally flipped), and with one of those views
drawn per image per batch on the fly (no 4x memory, a fresh draw every epoch). `val_accuracy.png` has all curves;
`augmentations.png` shows the four views and `on_the_fly.png` what the on-the-fly stream fed in three epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlsp.config import to_dict
from dlsp.models.lowrank import count_parameters
from dlsp.models.vision import build_classifier
from dlsp.vision.augment import augmentation_views, materialise, random_views
from dlsp.vision.config import VisionConfig
from dlsp.vision.data import VisionData
from dlsp.vision.model_file import save_classifier
from dlsp.vision.studies.output import StudyOutput
from dlsp.vision.studies.plots import accuracy_curves, image_grid
from dlsp.vision.training import accuracy_of, history_figures, train_classifier, val_accuracy_curve


def run(config: VisionConfig, data: VisionData, out: Path, device: torch.device, progress: bool,
        log) -> StudyOutput:
    train, section = config.train, config.augment
    show_views(data, section.brightness, section.examples, out, train.seed)
    variants: dict[str, tuple[Any, Any]] = {"original": (data.train, None),
                                            "augmented 4x": (materialise(data.train, section.brightness), None)}
    if section.on_the_fly:
        variants["on the fly"] = (data.train, random_views(section.brightness))
    curves, figures, rows = {}, {}, []
    params = 0
    for label, (split, transform) in variants.items():
        torch.manual_seed(train.seed)
        model = build_classifier(config.model.name, data.input_shape, data.n_classes, **config.model.args)
        params = count_parameters(model)
        log(f"training on the {label} set ({len(split):,} images per epoch, {params:,} parameters)")
        slug = label.replace(" ", "_")
        result = train_classifier(model, split, data.val, epochs=train.epochs, batch_size=train.batch_size,
                                  device=device, lr=train.lr, seed=train.seed, select=train.select,
                                  patience=train.patience, max_seconds=train.max_seconds, transform=transform,
                                  progress=progress, metrics_path=out / f"metrics_{slug}.jsonl",
                                  lr_schedule=train.lr_schedule)
        test_accuracy = accuracy_of(model, data.test, device)
        save_classifier(out / f"model_{slug}.pt", model, config.model.name, data.train.classes, to_dict(config),
                        variant=label)
        if label == "augmented 4x":
            save_classifier(out / "best.pt", model, config.model.name, data.train.classes, to_dict(config),
                            variant=label)
        curves[label] = val_accuracy_curve(result)
        summary = history_figures(result)
        figures[slug] = {"test_accuracy": test_accuracy, "train_images_per_epoch": len(split), **summary}
        rows.append([label, len(split), summary["epochs"], summary["val_accuracy"], test_accuracy,
                     summary["seconds"]])
    accuracy_curves(out / "val_accuracy.png", curves, f"{config.model.name} on {data.source}: augmentation")
    results = {"study": "cifar_augment", "data": data.source, "test_accuracy": figures["augmented_4x"]["test_accuracy"],
               "params": params, "variants": figures,
               "gain_points": 100 * (figures["augmented_4x"]["test_accuracy"] - figures["original"]["test_accuracy"])}
    headers = ["training set", "images/epoch", "epochs", "best val acc", "test acc", "seconds"]
    return StudyOutput(results, headers, rows, ["val_accuracy.png", "augmentations.png", "on_the_fly.png"])


def show_views(data: VisionData, brightness: float, count: int, out: Path, seed: int) -> None:
    """`augmentations.png` (each view of a few training images) and `on_the_fly.png` (three epochs' draws)."""
    pick = np.random.default_rng(seed).choice(len(data.train), min(count, len(data.train)), replace=False)
    x = torch.from_numpy(data.train.images[pick])
    rows = [(name, view(x).numpy()) for name, view in augmentation_views(brightness).items()]
    image_grid(out / "augmentations.png", rows, "the four views of the 4x augmented set")
    transform = random_views(brightness)
    draws = [(f"epoch {epoch + 1}", transform(x, torch.Generator().manual_seed(seed + epoch)).numpy())
             for epoch in range(3)]
    image_grid(out / "on_the_fly.png", [("images", x.numpy()), *draws],
               "on-the-fly augmentation: a fresh random view per image and epoch")

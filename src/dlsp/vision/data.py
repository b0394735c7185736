"""Loading a study's images (embedded digits, MNIST IDX, CIFAR-10 batches or image folders) and batching them.

A study gets a `VisionData`: `train`, `val` (held out of train, picks the best epoch) and `test` splits as
`ImageSplit`s, float32 images in [0, 1]. Batches are `(images, labels)` tensors moved to the device one batch at
a time, so the whole set never has to fit on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlsp.data.image_files import (
    is_cifar_batch_folder,
    is_mnist_folder,
    load_cifar_batches,
    load_image_folder,
    load_mnist,
)
from dlsp.data.images import ImageSplit, load_digits
from dlsp.errors import DlspError
from dlsp.vision.config import DataSection

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class VisionData:
    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.train.classes)


def load_vision_data(section: DataSection) -> VisionData:
    """The splits `section` describes: the dataset, the caps on train/test, and the validation hold-out."""
    source, splits = _load_source(section)
    train, test = splits["train"], splits["test"]
    if section.test_limit is not None:
        test = subsample(test, section.test_limit, section.seed + 1)
    if "val" in splits:
        val = splits["val"]
    else:
        train, val = split_off(train, section.val_fraction, section.seed)
    if section.train_limit is not None:
        train = subsample(train, section.train_limit, section.seed + 2)
    for name, split in (("train", train), ("validation", val), ("test", test)):
        if len(split) == 0:
            raise DlspError(f"the {name} split is empty")
    return VisionData(train, val, test, source)


def _load_source(section: DataSection) -> tuple[str, dict[str, ImageSplit]]:
    if section.source == "digits" and section.dir is None:
        return "digits", load_digits(test_fraction=0.2, seed=section.seed)
    if section.dir is None:
        raise DlspError(f"data.source {section.source} needs a dataset folder: pass --data DIR")
    folder = Path(section.dir)
    if not folder.is_dir():
        raise DlspError("dataset folder does not exist" if not folder.exists() else "not a folder", folder)
    if is_mnist_folder(folder):
        return "mnist", load_mnist(folder)
    if is_cifar_batch_folder(folder):
        inner = folder / "cifar-10-batches-py"
        return "cifar10", load_cifar_batches(inner if inner.is_dir() else folder)
    if (folder / "train").is_dir():
        # Decoding 50,000 JPEGs takes a while; cap what is read to what the study uses (val comes from train).
        train_cap = None
        if section.train_limit is not None:
            train_cap = int(np.ceil(section.train_limit / (1 - section.val_fraction) / _n_classes(folder)))
        test_cap = None if section.test_limit is None else int(np.ceil(section.test_limit / _n_classes(folder)))
        return "image folder", load_image_folder(folder, {"train": train_cap, "test": test_cap}, section.seed)
    raise DlspError("no MNIST IDX files, CIFAR-10 batches or train/<class>/ image folders here", folder)


def _n_classes(folder: Path) -> int:
    return max(1, sum(1 for p in (folder / "train").iterdir() if p.is_dir()))


def subsample(split: ImageSplit, limit: int, seed: int) -> ImageSplit:
    """A seeded random subset of at most `limit` images (in their original order)."""
    if limit < 1:
        raise DlspError(f"a subset needs at least one image, got {limit}")
    if len(split) <= limit:
        return split
    keep = np.sort(np.random.default_rng(seed).choice(len(split), limit, replace=False))
    return ImageSplit(split.images[keep], split.labels[keep], split.classes)


def split_off(split: ImageSplit, fraction: float, seed: int) -> tuple[ImageSplit, ImageSplit]:
    """`(rest, held out)`: a seeded, stratified `fraction` of `split` held out."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(split))
    counts = np.bincount(split.labels)
    classes = int((counts > 0).sum())
    held_count = int(np.ceil(fraction * len(split)))
    # Stratify when every class can appear on both sides; tiny sets fall back to a plain random split.
    stratify = split.labels if counts[counts > 0].min() >= 2 and classes <= min(held_count,
                                                                                  len(split) - held_count) else None
    if held_count >= len(split):
        raise DlspError(f"cannot hold out {fraction:.0%} of {len(split)} images and keep any")
    rest, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    rest, held = np.sort(rest), np.sort(held)
    return (ImageSplit(split.images[rest], split.labels[rest], split.classes),
            ImageSplit(split.images[held], split.labels[held], split.classes))


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, device: torch.device,
            seed: int | None = None, transform: Transform | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`(images, labels)` tensor batches on `device`; shuffled when `seed` is given; `transform` per batch."""
    order = np.random.default_rng(seed).permutation(len(labels)) if seed is not None else np.arange(len(labels))
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        x = torch.from_numpy(images[index])
        if transform is not None:
            x = transform(x, generator)
        yield x.to(device), torch.from_numpy(labels[index]).to(device)


def describe(data: VisionData) -> str:
    return (f"{data.source}: {len(data.train):,} train / {len(data.val):,} validation / {len(data.test):,} test "
            f"images of {'x'.join(str(s) for s in data.input_shape)}, {data.n_classes} classes")

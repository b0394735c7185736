"""Image augmentations and self-supervised pretext tasks on batches `(batch, channels, height, width)` in [0, 1].

The augmentation study's four views are the original, brightened, darkened and horizontally flipped image;
`materialise` stores all four (4x the data), `random_views` draws one per image per batch instead (on the fly,
the better practice: no 4x memory and a fresh draw every epoch). Pretext tasks label each image with the
transformation applied to it: `flip_rot` (original, vertical flip, rotation by 90 degrees) or `rotnet`
(rotations by 0, 90, 180, 270 degrees).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from dlsp.data.images import ImageSplit
from dlsp.errors import DlspError

View = Callable[[torch.Tensor], torch.Tensor]


def brighten(x: torch.Tensor, delta: float) -> torch.Tensor:
    return (x + delta).clamp(0.0, 1.0)


def darken(x: torch.Tensor, delta: float) -> torch.Tensor:
    return (x - delta).clamp(0.0, 1.0)


def hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def vflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


def rotate(x: torch.Tensor, quarter_turns: int) -> torch.Tensor:
    """Rotate counter-clockwise by `quarter_turns` x 90 degrees (square images)."""
    if x.shape[-1] != x.shape[-2] and quarter_turns % 2:
        raise DlspError(f"rotating by 90 degrees needs square images, got {x.shape[-2]}x{x.shape[-1]}")
    return torch.rot90(x, quarter_turns, dims=(-2, -1))


def augmentation_views(brightness: float) -> dict[str, View]:
    """The study's four views by name."""
    return {"original": lambda x: x, "brightened": lambda x: brighten(x, brightness),
            "darkened": lambda x: darken(x, brightness), "flipped": hflip}


def materialise(split: ImageSplit, brightness: float) -> ImageSplit:
    """The 4x augmented set: every image in all four views (labels repeated)."""
    x = torch.from_numpy(split.images)
    images = torch.cat([view(x) for view in augmentation_views(brightness).values()]).numpy()
    return ImageSplit(np.ascontiguousarray(images), np.tile(split.labels, 4), split.classes)


def random_views(brightness: float) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """A batch transform drawing one of the four views per image (on-the-fly augmentation)."""
    views = list(augmentation_views(brightness).values())

    def transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        choice = torch.randint(len(views), (len(x),), generator=generator)
        return apply_per_sample(x, choice, views)

    return transform


def apply_per_sample(x: torch.Tensor, choice: torch.Tensor, views: list[View]) -> torch.Tensor:
    """`views[choice[i]](x[i])` for every image `i`."""
    out = x.clone()
    for index, view in enumerate(views):
        mask = choice == index
        if mask.any():
            out[mask] = view(x[mask])
    return out


PRETEXTS: dict[str, tuple[tuple[str, View], ...]] = {
    "flip_rot": (("original", lambda x: x), ("vertical flip", vflip), ("rotated 90", lambda x: rotate(x, 1))),
    "rotnet": tuple((f"rotated {90 * k}", lambda x, k=k: rotate(x, k)) for k in range(4)),
}


def pretext_classes(pretext: str) -> tuple[str, ...]:
    if pretext not in PRETEXTS:
        raise DlspError(f"unknown pretext {pretext!r} (known: {', '.join(PRETEXTS)})")
    return tuple(name for name, _ in PRETEXTS[pretext])


def pretext_batch(x: torch.Tensor, pretext: str, generator: torch.Generator, all_views: bool = False,
                  hflip_prob: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image transformed by a random pretext transformation; the label is that transformation's index.

    `all_views`: every image under every transformation instead (RotNet's practice: the batch holds all four
    rotations of each image, so the network must tell them apart on the same content). `hflip_prob`: flip
    images left-right first with this probability (a data augmentation that keeps every pretext label true).
    """
    pretext_classes(pretext)
    views = [view for _, view in PRETEXTS[pretext]]
    if hflip_prob > 0:
        flip = torch.rand(len(x), generator=generator) < hflip_prob
        x = torch.where(flip[:, None, None, None], hflip(x), x)
    if all_views:
        labels = torch.arange(len(views)).repeat_interleave(len(x))
        return torch.cat([view(x) for view in views]), labels
    labels = torch.randint(len(views), (len(x),), generator=generator)
    return apply_per_sample(x, labels, views), labels


def pretext_batches(images: np.ndarray, pretext: str, batch_size: int, device: torch.device,
                    seed: int, shuffle: bool = True, all_views: bool = False, hflip_prob: float = 0.0,
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of `(transformed images, pretext labels)` from unlabelled `images` (a fresh draw per seed).

    With `all_views` a batch holds `batch_size // views` images, each under every view (same batch size).
    """
    order = np.random.default_rng(seed).permutation(len(images)) if shuffle else np.arange(len(images))
    generator = torch.Generator().manual_seed(seed)
    step = max(1, batch_size // len(pretext_classes(pretext))) if all_views else batch_size
    for start in range(0, len(order), step):
        x, labels = pretext_batch(torch.from_numpy(images[order[start:start + step]]), pretext, generator,
                                  all_views, hflip_prob)
        yield x.to(device), labels.to(device)

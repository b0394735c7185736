"""Image datasets. The embedded default is scikit-learn's bundled handwritten digits: it ships inside
scikit-learn, so the image lab works on a fresh machine with no download."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlsp.errors import DlspError


@dataclass(frozen=True)
class ImageSplit:
    """Images `(n, channels, height, width)` float32 in [0, 1] and integer labels `(n,)`."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> dict[str, ImageSplit]:
    """scikit-learn's 1,797 8x8 digits as stratified `train` and `test` splits.

    Shape: `images` `(n, 1, 8, 8)`, values 0..16 scaled to [0, 1].
    """
    if not 0 < test_fraction < 1:
        raise DlspError(f"test fraction must be between 0 and 1, got {test_fraction}")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=test_fraction,
                                                        random_state=seed, stratify=labels)
    classes = tuple(str(c) for c in digits.target_names)
    return {"train": ImageSplit(train_x, train_y, classes), "test": ImageSplit(test_x, test_y, classes)}

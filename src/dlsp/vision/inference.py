"""Using a trained image classifier: its model file loaded as an `ImageClassifier`, class probabilities.

    from dlsp.vision.inference import ImageClassifier
    classifier = ImageClassifier.from_file("runs/mnist_mlp")     # a run folder of `dlsp vision train`, or its best.pt
    probs = classifier.probabilities(images)                    # (n, classes); images as `dlsp.vision.data` gives them
"""

from __future__ import annotations

import os

import numpy as np
import torch

from dlsp.device import resolve_device
from dlsp.train.checkpoint import model_file_in
from dlsp.vision.model_file import ClassifierModel, load_classifier
from dlsp.vision.training import predict_proba


class ImageClassifier:
    """An image classifier ready to classify on a device: float32 images in [0, 1], shaped like its training data
    (`input_shape`, e.g. `(1, 28, 28)`)."""

    def __init__(self, loaded: ClassifierModel, device: str | torch.device = "auto") -> None:
        self.loaded = loaded
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = loaded.model.to(self.device).eval()
        self.classes = loaded.classes

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None = None, device: str = "auto") -> ImageClassifier:
        """Load a model file, or the `best.pt` of a run folder (no image classifier ships with dlsp: `path` is
        needed)."""
        return cls(load_classifier(model_file_in(path, "image classifier", "dlsp vision train")), device)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.input_shape)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax probabilities. Shape: `(n, *input_shape) -> (n, classes)`."""
        return predict_proba(self.model, images, self.device)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The most probable class of each image, as an index into `classes`. Shape: `(n, *input_shape) -> (n,)`."""
        return self.probabilities(images).argmax(1)

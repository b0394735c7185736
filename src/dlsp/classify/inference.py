"""Using a trained clip classifier: its model file loaded as a `Classifier`, segment and clip probabilities.

A clip's prediction averages the softmax probabilities of its segments. A classifier model file (`best.pt` of a
run) holds the model with its class labels and feature settings, so `Classifier.from_file(...).predict_file(...)`
needs nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dlsp.classify.features import MIN_CLIP_SECONDS, FeatureConfig, clip_features, fit_window
from dlsp.errors import DlspError


@torch.no_grad()
def segment_probabilities(model: nn.Module, features: torch.Tensor, device: torch.device,
                          batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities of every segment.

    Shape: `(clips, n_segments, n_mfcc, frames) -> (clips, n_segments, classes)`.
    """
    model.eval()
    clips, n_segments = features.shape[:2]
    flat = features.reshape(clips * n_segments, *features.shape[2:])
    outputs = [torch.softmax(model(flat[start:start + batch_size].to(device)), dim=1).cpu()
               for start in range(0, flat.shape[0], batch_size)]
    probs = torch.cat(outputs) if outputs else torch.zeros(0, getattr(model, "n_classes", 0))
    return probs.reshape(clips, n_segments, -1).numpy()


def clip_probabilities(segment_probs: np.ndarray) -> np.ndarray:
    """Mean of each clip's segment probabilities. Shape: `(clips, n_segments, classes) -> (clips, classes)`."""
    return segment_probs.mean(axis=1)


@dataclass
class Classifier:
    """A trained classifier with its labels and feature settings."""

    model: nn.Module
    labels: list[str]
    features: FeatureConfig
    sample_rate: int
    device: torch.device
    name: str

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None = None, device: str = "auto") -> Classifier:
        """Load a model file, or the `best.pt` of a run folder (no clip classifier ships with dlsp: `path` is
        needed)."""
        from dlsp.config import from_dict
        from dlsp.device import resolve_device
        from dlsp.models.classifiers import MODELS
        from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint, model_file_in

        path = model_file_in(path, "clip classifier", "dlsp classify train")
        payload = load_checkpoint(path)
        if payload.get("task") != "classify":
            raise DlspError("not a classifier model file (train one with 'dlsp classify train')", path)
        model = build_from_checkpoint(payload, MODELS, path)
        target = resolve_device(device)
        return cls(model.to(target).eval(), list(payload["labels"]), from_dict(FeatureConfig, payload["features"]),
                   int(payload["sample_rate"]), target, str(payload["model"]))

    def probabilities(self, features: torch.Tensor) -> np.ndarray:
        """Clip probabilities. Shape: `(clips, n_segments, n_mfcc, frames) -> (clips, classes)`."""
        return clip_probabilities(segment_probabilities(self.model, features, self.device))

    def predict_file(self, path: str | os.PathLike[str], top: int = 3) -> list[tuple[str, float]]:
        """The `top` most probable labels of one audio file with their probabilities."""
        from dlsp.audio.io import load_audio

        audio, _ = load_audio(path, self.sample_rate, allow_silent=True)
        fitted = fit_window(audio, self.sample_rate, self.features.n_fft)
        if fitted is None:
            raise DlspError(f"clip too short: {audio.shape[-1]} samples at {self.sample_rate} Hz, under "
                            f"{MIN_CLIP_SECONDS:g} s", path)
        audio = fitted
        features = clip_features(audio, self.sample_rate, self.features)
        frames = getattr(self.model, "frames", features.shape[-1])
        if features.shape[-1] != frames:
            raise DlspError(f"clip gives {features.shape[-1]} frames per segment, the model expects {frames} "
                            "(the model was trained on clips of another length)", path)
        probs = self.probabilities(features.unsqueeze(0))[0]
        order = np.argsort(-probs)[:top]
        return [(self.labels[i], float(probs[i])) for i in order]

"""Study 1: an MLP on MNIST (5 x 1024 ReLU, dropout 0.2, Adam 1e-3, 20 epochs), its best examples, and PCA /
t-SNE views of the test set's activations at the input and after every layer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlsp.config import to_dict
from dlsp.data.images import ImageSplit
from dlsp.models.lowrank import count_parameters
from dlsp.models.vision import build_classifier
from dlsp.report.plots import loss_curves
from dlsp.vision.config import AnalysisSection, VisionConfig
from dlsp.vision.data import VisionData, subsample
from dlsp.vision.model_file import save_classifier
from dlsp.vision.studies.output import StudyOutput
from dlsp.vision.studies.plots import best_examples, embedding_panels
from dlsp.vision.training import history_figures, predict_proba, train_classifier

TARGET_ACCURACY = 0.984  # MNIST only: a plain Keras MLP's figure


def run(config: VisionConfig, data: VisionData, out: Path, device: torch.device, progress: bool,
        log) -> StudyOutput:
    torch.manual_seed(config.train.seed)
    model = build_classifier(config.model.name, data.input_shape, data.n_classes, **config.model.args)
    params = count_parameters(model)
    log(f"training {config.model.name} ({params:,} parameters) on {device}")
    result = train_classifier(
        model, data.train, data.val, epochs=config.train.epochs, batch_size=config.train.batch_size, device=device,
        lr=config.train.lr, seed=config.train.seed, select=config.train.select, patience=config.train.patience,
        max_seconds=config.train.max_seconds, progress=progress, metrics_path=out / "metrics.jsonl",
        lr_schedule=config.train.lr_schedule)
    save_classifier(out / "best.pt", model, config.model.name, data.train.classes, to_dict(config))
    probs = predict_proba(model, data.test.images, device)
    test_accuracy = float(np.mean(probs.argmax(1) == data.test.labels))
    _, confidences = best_examples(out / "best_examples.png", data.test.images, data.test.labels, probs,
                                   data.test.classes)
    loss_curves(out / "loss.png", result.history, title=f"{config.model.name} on {data.source}")
    log("activation views (PCA, t-SNE) ...")
    activation_views(model, data.test, out, config.analysis, device, config.data.seed)
    figures = history_figures(result)
    results: dict[str, Any] = {
        "study": "mnist_mlp", "data": data.source, "test_accuracy": test_accuracy, "params": params,
        **figures, "threads": torch.get_num_threads(), "best_example_confidence": confidences,
    }
    if data.source == "mnist":
        results["target_accuracy"] = TARGET_ACCURACY
        results["target_met"] = test_accuracy >= TARGET_ACCURACY
    headers = ["model", "params", "epochs", "s/epoch", "val acc", "test acc"]
    rows = [[config.model.name, params, figures["epochs"], figures["seconds_per_epoch"], figures["val_accuracy"],
             test_accuracy]]
    return StudyOutput(results, headers, rows, ["best_examples.png", "pca.png", "tsne.png", "loss.png"])


def activation_views(model: nn.Module, test: ImageSplit, out: str | os.PathLike[str], analysis: AnalysisSection,
                     device: torch.device, seed: int) -> None:
    """`pca.png` and `tsne.png`: one panel per layer (input, every hidden layer, output) of test activations."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    out = Path(out)
    pca_split = subsample(test, analysis.pca_samples, seed)
    layers = _activations(model, pca_split.images, device)
    pca = [(name, PCA(2, random_state=seed).fit_transform(x)) for name, x in layers]
    embedding_panels(out / "pca.png", pca, pca_split.labels, f"PCA of test activations ({len(pca_split)} images)")
    tsne_split = subsample(test, analysis.tsne_samples, seed)
    panels = []
    # OpenMP threads spin-wait on a busy machine (17 s instead of 1 s for 150 points): use torch's thread count.
    with threadpool_limits(limits=torch.get_num_threads()):
        for name, x in _activations(model, tsne_split.images, device):
            # PCA to 50 dimensions first (the usual t-SNE preprocessing): much faster, same picture.
            reduced = PCA(min(50, *x.shape), random_state=seed).fit_transform(x) if x.shape[1] > 50 else x
            perplexity = min(analysis.tsne_perplexity, (len(x) - 1) / 3)
            tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, max_iter=analysis.tsne_iterations)
            panels.append((name, tsne.fit_transform(reduced)))
    embedding_panels(out / "tsne.png", panels, tsne_split.labels, f"t-SNE of test activations ({len(tsne_split)} "
                                                                   "images)")


def _activations(model: nn.Module, images: np.ndarray, device: torch.device) -> list[tuple[str, np.ndarray]]:
    model.eval()
    chunks = [model.activations(torch.from_numpy(images[i:i + 1024]).to(device)) for i in range(0, len(images), 1024)]
    return [(name, np.concatenate([c[k][1].cpu().numpy() for c in chunks]).astype(np.float64))
            for k, (name, _) in enumerate(chunks[0])]

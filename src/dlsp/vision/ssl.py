"""Study 4: a self-supervised pretext task, then transfer to classification with few labels.

Pretext: every unlabelled training image is shown original, vertically flipped or rotated by 90 degrees (or, with
`ssl.pretext=rotnet`, rotated by 0/90/180/270 degrees) and the network learns which. Transfer: the pretrained
convolutional trunk gets a new classification head and is trained on only `ssl.labelled` labelled images with
per-parameter-group learning rates (trunk 1e-5, head 1e-3), against the same network trained from scratch on
the same images. `transfer_vs_scratch.png` plots validation accuracy every `ssl.eval_every` epochs for both.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlsp.config import to_dict
from dlsp.fileio import append_json_line
from dlsp.models.lowrank import count_parameters
from dlsp.models.vision import build_classifier
from dlsp.train.loop import fit
from dlsp.vision.augment import pretext_batches, pretext_classes
from dlsp.vision.config import VisionConfig
from dlsp.vision.data import VisionData, split_off
from dlsp.vision.model_file import save_classifier
from dlsp.vision.plots import accuracy_curves
from dlsp.vision.study import StudyOutput
from dlsp.vision.training import (
    accuracy_of,
    classification_step,
    history_figures,
    lr_factor,
    scheduled,
    train_classifier,
    val_accuracy_curve,
)

TARGET_GAIN_POINTS = 5.0


def run(config: VisionConfig, data: VisionData, out: Path, device: torch.device, progress: bool,
        log) -> StudyOutput:
    train, section = config.train, config.ssl
    classes = pretext_classes(section.pretext)
    unlabelled = data.train.images
    if section.unlabelled_limit is not None and len(unlabelled) > section.unlabelled_limit:
        keep = np.sort(np.random.default_rng(train.seed).choice(len(unlabelled), section.unlabelled_limit, False))
        unlabelled = unlabelled[keep]
    torch.manual_seed(train.seed)
    pretext_model = build_classifier(config.model.name, data.input_shape, len(classes), **config.model.args)
    log(f"pretext task {section.pretext} ({', '.join(classes)}) on {len(unlabelled):,} unlabelled images")
    pretext_result = train_pretext(pretext_model, unlabelled, data.val.images, section.pretext, section.pretext_epochs,
                                   section.pretext_lr, train.batch_size, device, train.seed, progress,
                                   out / "metrics_pretext.jsonl", lr_schedule=train.lr_schedule,
                                   all_views=section.pretext_all_views, hflip_prob=section.pretext_hflip)
    pretext_accuracy = pretext_result.history[pretext_result.best_epoch]["val_pretext_accuracy"]
    save_classifier(out / "pretext.pt", pretext_model, config.model.name, classes, to_dict(config))
    log(f"pretext validation accuracy {pretext_accuracy:.4f} (chance {1 / len(classes):.3f})")

    labelled = labelled_subset(data, section.labelled, train.seed)
    transfer = copy.deepcopy(pretext_model)
    transfer.new_head(data.n_classes)
    scratch = build_classifier(config.model.name, data.input_shape, data.n_classes, **config.model.args)
    runs: dict[str, Any] = {}
    curves = {}
    lrs = {"trunk": section.pretrained_lr, "head": section.head_lr}
    for label, model, kwargs in (("transfer", transfer, {"lrs": lrs}), ("scratch", scratch, {"lr": section.head_lr})):
        log(f"{label}: {len(labelled)} labelled images, {section.transfer_epochs} epochs"
            + (f", trunk lr {section.pretrained_lr:g}, head lr {section.head_lr:g}" if label == "transfer" else ""))
        result = train_classifier(model, labelled, data.val, epochs=section.transfer_epochs,
                                  batch_size=min(train.batch_size, 64), device=device, seed=train.seed,
                                  select=train.select, progress=progress, metrics_path=out / f"metrics_{label}.jsonl",
                                  **kwargs)
        epochs, accuracy = val_accuracy_curve(result)
        shown = [i for i, e in enumerate(epochs) if e % section.eval_every == 0 or e == 1]
        curves[label] = ([epochs[i] for i in shown], [accuracy[i] for i in shown])
        runs[label] = {"test_accuracy": accuracy_of(model, data.test, device), **history_figures(result)}
        save_classifier(out / ("best.pt" if label == "transfer" else "scratch.pt"), model, config.model.name,
                        data.train.classes, to_dict(config), variant=label)
    accuracy_curves(out / "transfer_vs_scratch.png",
                    {f"pretext ({section.pretext}) + transfer": curves["transfer"],
                     "from scratch": curves["scratch"]},
                    f"{len(labelled)} labelled training images ({data.source})")
    gain = 100 * (runs["transfer"]["test_accuracy"] - runs["scratch"]["test_accuracy"])
    results: dict[str, Any] = {
        "study": "ssl", "data": data.source, "pretext": section.pretext, "pretext_classes": list(classes),
        "pretext_val_accuracy": pretext_accuracy, "pretext_training": history_figures(pretext_result),
        "unlabelled_images": len(unlabelled), "labelled_images": len(labelled),
        "test_accuracy": runs["transfer"]["test_accuracy"], "scratch_test_accuracy": runs["scratch"]["test_accuracy"],
        "gain_points": gain, "params": count_parameters(transfer), "runs": runs,
        "target_gain_points": TARGET_GAIN_POINTS, "target_met": gain >= TARGET_GAIN_POINTS,
    }
    headers = ["model", "labelled", "epochs", "best val acc", "test acc"]
    rows = [[f"pretext {section.pretext} + transfer", len(labelled), runs["transfer"]["epochs"],
             runs["transfer"]["val_accuracy"], runs["transfer"]["test_accuracy"]],
            ["from scratch", len(labelled), runs["scratch"]["epochs"], runs["scratch"]["val_accuracy"],
             runs["scratch"]["test_accuracy"]]]
    return StudyOutput(results, headers, rows, ["transfer_vs_scratch.png"])


def labelled_subset(data: VisionData, count: int, seed: int):
    """A stratified, seeded subset of `count` labelled training images (all of them if fewer)."""
    if count >= len(data.train):
        return data.train
    _, subset = split_off(data.train, count / len(data.train), seed + 7)
    return subset


def train_pretext(model: torch.nn.Module, unlabelled: np.ndarray, val_images: np.ndarray, pretext: str, epochs: int,
                  lr: float, batch_size: int, device: torch.device, seed: int, progress: bool, metrics_path: Path,
                  lr_schedule: str = "constant", all_views: bool = False, hflip_prob: float = 0.0):
    """Train `model` to tell which pretext transformation each image got (labels drawn afresh every epoch).

    `lr_schedule="cosine"` decays the rate towards 0 over `epochs` (the recipe's `train.lr_schedule`);
    `all_views` and `hflip_prob` as in `pretext_batch`. Validation always draws one view per image, unflipped.
    """

    model.to(device)
    # A fixed draw for validation so that epochs compare on the same task.
    val = list(pretext_batches(val_images, pretext, 1024, device, seed=seed + 999, shuffle=False))

    def val_metrics(m: torch.nn.Module) -> dict[str, float]:
        m.eval()
        with torch.no_grad():
            right = sum(int((m(x).argmax(1) == y).sum()) for x, y in val)
        return {"val_pretext_accuracy": right / len(val_images)}

    def log_epoch(record: dict[str, float], improved: bool) -> None:
        append_json_line(metrics_path, record)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(model, classification_step("accuracy"), optimizer,
               train_batches=lambda epoch: scheduled(
                   optimizer, [lr], lr_factor(lr_schedule, epoch, epochs),
                   pretext_batches(unlabelled, pretext, batch_size, device, seed + epoch, all_views=all_views,
                                   hflip_prob=hflip_prob)),
               val_batches=lambda: iter(val), epochs=epochs, progress=progress, on_epoch_end=log_epoch,
               val_metrics=val_metrics)

"""Study 4: a self-supervised pretext task, then transfer to classification with few labels.

Pretext: every unlabelled training image is shown original, vertically flipped or rotated by 90 degrees (or, with
`ssl.pretext=rotnet`, rotated by 0/90/180/270 degrees) and the network learns which. Transfer: the pretrained
convolutional trunk gets a new classification head and is trained on only `ssl.labelled` labelled images with
per-parameter-group learning rates (trunk 1e-5, head 1e-3), against the same network trained from scratch on
the same images. `transfer_vs_scratch.png` plots validation accuracy every `ssl.eval_every` epochs for both.

Options beyond the study: RotNet-style pretext batches holding every view of each image (`ssl.pretext_all_views`),
left-right flips as pretext augmentation (`ssl.pretext_hflip`), a cosine learning-rate decay (`train.lr_schedule`),
transfer that keeps only the first N pretrained CNN stages and re-initialises the later, most pretext-specific
ones (`ssl.transfer_stages`), and reusing the pretext model of an earlier run (`ssl.pretext_model`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlsp.config import to_dict
from dlsp.errors import DlspError
from dlsp.fileio import append_json_line
from dlsp.models.lowrank import count_parameters
from dlsp.models.vision import build_classifier
from dlsp.train.loop import fit
from dlsp.train.run import make_optimizer
from dlsp.vision.augment import pretext_batches, pretext_classes
from dlsp.vision.config import VisionConfig
from dlsp.vision.data import VisionData, split_off
from dlsp.vision.model_file import load_classifier, save_classifier
from dlsp.vision.studies.output import StudyOutput
from dlsp.vision.studies.plots import accuracy_curves
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
    if section.pretext_model is not None:
        pretext_model = load_pretext_model(section.pretext_model, config.model.name, pretext_model, classes).to(device)
        pretext_training: dict[str, Any] = {"pretext_model": str(section.pretext_model)}
        log(f"pretext model {section.pretext_model} (not trained here)")
    else:
        log(f"pretext task {section.pretext} ({', '.join(classes)}) on {len(unlabelled):,} unlabelled images")
        pretext_result = train_pretext(pretext_model, unlabelled, data.val.images, section.pretext,
                                       section.pretext_epochs, section.pretext_lr, train.batch_size, device,
                                       train.seed, progress, out / "metrics_pretext.jsonl",
                                       lr_schedule=train.lr_schedule, all_views=section.pretext_all_views,
                                       hflip_prob=section.pretext_hflip)
        pretext_training = history_figures(pretext_result)
    pretext_accuracy = pretext_accuracy_of(pretext_model, data.val.images, section.pretext, device, train.seed)
    save_classifier(out / "pretext.pt", pretext_model, config.model.name, classes, to_dict(config))
    log(f"pretext validation accuracy {pretext_accuracy:.4f} (chance {1 / len(classes):.3f})")

    labelled = labelled_subset(data, section.labelled, train.seed)
    transfer = copy.deepcopy(pretext_model)
    transfer.new_head(data.n_classes)
    lrs = transfer_learning_rates(transfer, section.transfer_stages, section.pretrained_lr, section.head_lr)
    scratch = build_classifier(config.model.name, data.input_shape, data.n_classes, **config.model.args)
    runs: dict[str, Any] = {}
    curves = {}
    for label, model, kwargs in (("transfer", transfer, {"lrs": lrs}), ("scratch", scratch, {"lr": section.head_lr})):
        log(f"{label}: {len(labelled)} labelled images, {section.transfer_epochs} epochs"
            + (f", pretrained layers lr {section.pretrained_lr:g}, new layers lr {section.head_lr:g}"
               + (f" (first {section.transfer_stages} stages kept)" if section.transfer_stages else "")
               if label == "transfer" else ""))
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
        "pretext_val_accuracy": pretext_accuracy, "pretext_training": pretext_training,
        "unlabelled_images": len(unlabelled), "labelled_images": len(labelled),
        "transfer_stages": section.transfer_stages,
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


def transfer_learning_rates(model: torch.nn.Module, keep_stages: int | None, pretrained_lr: float,
                            head_lr: float) -> dict[str, float]:
    """Per-submodule learning rates for transfer: pretrained layers at `pretrained_lr`, new ones at `head_lr`.

    `keep_stages=None` keeps the whole pretrained trunk. With a number, only the CNN's first `keep_stages`
    convolution stages keep their pretext weights; the later ones (whose features are the most specific to the
    pretext task) are re-initialised here and train with the head.
    """
    if keep_stages is None:
        return {"trunk": pretrained_lr, "head": head_lr}
    if not hasattr(model, "stage_of_trunk_modules"):
        raise DlspError("ssl.transfer_stages needs a CNN (model.name: cnn)")
    stages = model.stage_of_trunk_modules()
    n_stages = max(s for s in stages if s is not None) + 1
    if not 1 <= keep_stages <= n_stages:
        raise DlspError(f"ssl.transfer_stages must be between 1 and {n_stages} (the CNN's stages), got {keep_stages}")
    model.reset_stages(keep_stages)
    lrs = {f"trunk.{i}": pretrained_lr if stage is not None and stage < keep_stages else head_lr
           for i, (module, stage) in enumerate(zip(model.trunk, stages, strict=True))
           if any(p.requires_grad for p in module.parameters())}
    return {**lrs, "head": head_lr}


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
    val = list(validation_batches(val_images, pretext, device, seed))  # drawn once, scored every epoch

    def val_metrics(m: torch.nn.Module) -> dict[str, float]:
        return {"val_pretext_accuracy": _accuracy(m, val, len(val_images))}

    def log_epoch(record: dict[str, float], improved: bool) -> None:
        append_json_line(metrics_path, record)

    optimizer = make_optimizer(model.parameters(), lr)
    return fit(model, classification_step("accuracy"), optimizer,
               train_batches=lambda epoch: scheduled(
                   optimizer, [lr], lr_factor(lr_schedule, epoch, epochs),
                   pretext_batches(unlabelled, pretext, batch_size, device, seed + epoch, all_views=all_views,
                                   hflip_prob=hflip_prob)),
               val_batches=lambda: iter(val),
               epochs=epochs, progress=progress, on_epoch_end=log_epoch, val_metrics=val_metrics)


def pretext_accuracy_of(model: torch.nn.Module, images: np.ndarray, pretext: str, device: torch.device,
                        seed: int) -> float:
    """Pretext accuracy on `images`, each under one view of a fixed draw (so that epochs and runs compare on the
    same task)."""
    return _accuracy(model, validation_batches(images, pretext, device, seed), len(images))


def validation_batches(images: np.ndarray, pretext: str, device: torch.device, seed: int):
    """The fixed pretext draw that every validation of a run scores (one view per image, unshuffled)."""
    return pretext_batches(images, pretext, 1024, device, seed=seed + 999, shuffle=False)


@torch.no_grad()
def _accuracy(model: torch.nn.Module, batches, count: int) -> float:
    model.eval()
    return sum(int((model(x).argmax(1) == y).sum()) for x, y in batches) / count


def load_pretext_model(path: str, name: str, expected: torch.nn.Module, classes: tuple[str, ...]
                       ) -> torch.nn.Module:
    """A pretext model file from an earlier run (`ssl.pretext_model`): it must be the recipe's network trained on
    the recipe's pretext classes, so that transfer and scratch still compare the same network."""
    loaded = load_classifier(path)
    if tuple(loaded.classes) != tuple(classes):
        raise DlspError(f"pretext model predicts {', '.join(loaded.classes)}; this recipe's pretext has "
                        f"{', '.join(classes)}", path)
    mine, theirs = expected.get_model_args(), loaded.model.get_model_args()
    if loaded.name != name or mine != theirs:
        raise DlspError(f"pretext model is {loaded.name} {theirs}; the recipe builds {mine}", path)
    return loaded.model

"""Study 2: low-rank compression of an image classifier.

Every linear layer W where rank D saves parameters becomes U V^T of rank D, three ways: (a) truncated SVD of the
trained baseline, (b) the factorised network trained from scratch, (c) truncated SVD then fine-tuning. The table
compares them with the baseline (parameters, test accuracy, model file size, CPU inference time ratio) and
`accuracy_vs_rank.png` shows (a) and (c) over the ranks (5, 10, 20, 50, 100, full).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlsp.config import to_dict
from dlsp.errors import DlspError
from dlsp.models.lowrank import apply_low_rank_structure, compress_model, count_parameters
from dlsp.models.vision import build_classifier
from dlsp.vision.config import VisionConfig
from dlsp.vision.data import VisionData
from dlsp.vision.model_file import load_classifier, save_classifier
from dlsp.vision.studies.output import StudyOutput
from dlsp.vision.studies.plots import accuracy_vs_rank
from dlsp.vision.training import accuracy_of, history_figures, inference_seconds, train_classifier

TARGET_ACCURACY = 0.975  # rank 20 after fine-tuning, MNIST
TARGET_REDUCTION = 20.0  # at least 20x fewer parameters than the 5 x 1024 baseline


def run(config: VisionConfig, data: VisionData, out: Path, device: torch.device, progress: bool,
        log) -> StudyOutput:
    section, train = config.compression, config.train
    baseline = _baseline(config, data, out, device, progress, log)
    name = config.model.name if section.base_model is None else load_classifier(section.base_model).name

    def evaluate(model: nn.Module, label: str, file: str) -> dict[str, Any]:
        path = save_classifier(out / file, model, name, data.train.classes, to_dict(config), method=label)
        return {"method": label, "params": count_parameters(model), "test_accuracy": accuracy_of(model, data.test,
                                                                                                  device),
                "file_bytes": path.stat().st_size,
                "cpu_seconds": inference_seconds(model, data.test.images, section.timing_repeats)}

    def finetune(model: nn.Module, label: str) -> dict[str, Any]:
        result = train_classifier(model, data.train, data.val, epochs=section.finetune_epochs,
                                  batch_size=train.batch_size, device=device, lr=section.finetune_lr,
                                  seed=train.seed + 100, select=train.select, progress=progress,
                                  metrics_path=out / f"metrics_{label}.jsonl")
        return history_figures(result)

    base = evaluate(baseline, "baseline", "baseline.pt")
    log(f"baseline: {base['params']:,} parameters, test accuracy {base['test_accuracy']:.4f}")

    per_rank = []
    for rank in section.ranks:
        if rank == 0:
            per_rank.append({"rank": "full", "params": base["params"], "truncated_accuracy": base["test_accuracy"],
                             "finetuned_accuracy": base["test_accuracy"]})
            continue
        truncated = copy.deepcopy(baseline)
        layers = compress_model(truncated, rank)
        entry: dict[str, Any] = {"rank": rank, "params": count_parameters(truncated), "layers": len(layers),
                                 "truncated_accuracy": accuracy_of(truncated, data.test, device)}
        if layers:
            finetune(truncated, f"finetune_rank{rank}")
            entry["finetuned_accuracy"] = accuracy_of(truncated, data.test, device)
        else:
            entry["finetuned_accuracy"] = entry["truncated_accuracy"]
        log(f"rank {rank}: {entry['params']:,} parameters, SVD {entry['truncated_accuracy']:.4f}, "
            f"SVD + fine-tune {entry['finetuned_accuracy']:.4f}")
        per_rank.append(entry)

    rank = section.rank
    truncated = copy.deepcopy(baseline)
    layers = compress_model(truncated, rank)
    if not layers:
        raise DlspError(f"rank {rank} saves no parameters in any linear layer of this model")
    svd = evaluate(truncated, "svd", f"svd_rank{rank}.pt")
    tuned = copy.deepcopy(truncated)
    tune_figures = finetune(tuned, f"finetune_rank{rank}_main")
    finetuned = evaluate(tuned, "svd+finetune", "best.pt")
    torch.manual_seed(train.seed)
    scratch_model = apply_low_rank_structure(_fresh(config, data, baseline), layers)
    scratch_result = train_classifier(scratch_model, data.train, data.val, epochs=section.scratch_epochs,
                                      batch_size=train.batch_size, device=device, lr=train.lr, seed=train.seed,
                                      select=train.select, progress=progress,
                                      metrics_path=out / f"metrics_scratch_rank{rank}.jsonl",
                                      lr_schedule=train.lr_schedule)
    scratch = evaluate(scratch_model, "scratch", f"scratch_rank{rank}.pt")

    labels = [str(r["rank"]) for r in per_rank]
    accuracy_vs_rank(out / "accuracy_vs_rank.png", labels,
                     {"SVD truncation": [r["truncated_accuracy"] for r in per_rank],
                      f"SVD + {section.finetune_epochs} epochs fine-tuning": [r["finetuned_accuracy"]
                                                                             for r in per_rank]},
                     f"low-rank {name} on {data.source}")
    methods = {"baseline": base, "svd": svd, "scratch": scratch, "svd_finetune": finetuned}
    for entry in methods.values():
        entry["reduction"] = base["params"] / entry["params"]
        entry["cpu_time_ratio"] = entry["cpu_seconds"] / base["cpu_seconds"]
    results: dict[str, Any] = {
        "study": "compression", "data": data.source, "rank": rank, "layers": layers,
        "test_accuracy": finetuned["test_accuracy"], "params": finetuned["params"],
        "baseline_test_accuracy": base["test_accuracy"], "baseline_params": base["params"],
        "reduction": finetuned["reduction"], "methods": methods, "per_rank": per_rank,
        "finetune": tune_figures, "scratch_training": history_figures(scratch_result),
    }
    if data.source == "mnist":
        results["target"] = {"accuracy": TARGET_ACCURACY, "reduction": TARGET_REDUCTION,
                             "met": finetuned["test_accuracy"] >= TARGET_ACCURACY
                             and finetuned["reduction"] >= TARGET_REDUCTION}
    headers = ["model", "params", "x fewer", "test acc", "file KB", "CPU time ratio"]
    rows = [[label, m["params"], m["reduction"], m["test_accuracy"], m["file_bytes"] / 1024, m["cpu_time_ratio"]]
            for label, m in (("baseline", base), (f"SVD rank {rank}", svd), (f"scratch rank {rank}", scratch),
                             (f"SVD rank {rank} + fine-tune", finetuned))]
    return StudyOutput(results, headers, rows, ["accuracy_vs_rank.png"])


def _baseline(config: VisionConfig, data: VisionData, out: Path, device: torch.device, progress: bool,
              log) -> nn.Module:
    section, train = config.compression, config.train
    if section.base_model is not None:
        loaded = load_classifier(section.base_model)
        if tuple(loaded.model.input_shape) != data.input_shape or loaded.model.n_classes != data.n_classes:
            raise DlspError(f"base model takes {loaded.model.input_shape} images into {loaded.model.n_classes} "
                            f"classes; the data has {data.input_shape} into {data.n_classes}", section.base_model)
        log(f"baseline from {section.base_model}")
        return loaded.model.to(device)
    torch.manual_seed(train.seed)
    model = _fresh(config, data)
    log(f"training the baseline {config.model.name} ({count_parameters(model):,} parameters) on {device}")
    train_classifier(model, data.train, data.val, epochs=train.epochs, batch_size=train.batch_size, device=device,
                     lr=train.lr, seed=train.seed, select=train.select, patience=train.patience,
                     max_seconds=train.max_seconds, progress=progress, metrics_path=out / "metrics_baseline.jsonl",
                     lr_schedule=train.lr_schedule)
    return model


def _fresh(config: VisionConfig, data: VisionData, like: nn.Module | None = None) -> nn.Module:
    if like is not None and hasattr(like, "get_model_args"):
        args = {k: v for k, v in like.get_model_args().items() if k not in ("input_shape", "n_classes", "low_rank")}
        name = config.model.name if config.compression.base_model is None else \
            load_classifier(config.compression.base_model).name
        return build_classifier(name, data.input_shape, data.n_classes, **args)
    return build_classifier(config.model.name, data.input_shape, data.n_classes, **config.model.args)

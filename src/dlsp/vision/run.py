"""Running a vision study into a run folder, and evaluating a finished run.

A run folder gets `config.yaml` (exactly what ran), `metrics*.jsonl` (one line per epoch of each training),
`best.pt` (the study's main model), the study's PNGs, `results.md` (its table) and `results.json` (its figures:
always `test_accuracy` and `params`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlsp.config import apply_overrides, save_config
from dlsp.device import resolve_device
from dlsp.errors import DlspError
from dlsp.fileio import ensure_dir, write_json, write_text
from dlsp.report.tables import format_table
from dlsp.train.run_folder import check_run_folder, clear_run_files
from dlsp.vision.config import VisionConfig, quick, validate
from dlsp.vision.data import describe, load_vision_data


def run_study(config: VisionConfig, out: str | os.PathLike[str], quick_mode: bool = False,
              overrides: list[str] | None = None, progress: bool = True, log=print,
              overwrite: bool = False) -> dict[str, Any]:
    """Run `config`'s study into `out`; returns the results (also written to `out/results.json`).

    `quick_mode` shrinks the study (`dlsp.vision.config.quick`) before `overrides` apply, so `--set` still wins.
    A folder that is not empty is refused unless `overwrite` (`dlsp.train.run_folder.check_run_folder`; a study
    does not resume): then the previous study's results and logs are removed first.
    """
    config = validate(apply_overrides(quick(config) if quick_mode else config, overrides or []))
    check_run_folder(out, overwrite=overwrite, resumable=False)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = resolve_device(config.train.device)
    start = time.perf_counter()
    data = load_vision_data(config.data)  # data that cannot load leaves no run folder behind
    out = ensure_dir(out)
    clear_run_files(out, ("results.md", "metrics*.jsonl"))
    save_config(out / "config.yaml", config)
    log(describe(data))
    output = _study(config.study)(config, data, out, device, progress, log)
    output.results["wall_seconds"] = time.perf_counter() - start
    output.results["quick"] = quick_mode
    write_json(out / "results.json", output.results)
    table = format_table(output.headers, output.rows, markdown=True, precision=4)
    figures = "".join(f"\n![{name}]({name})\n" for name in output.figures)
    write_text(out / "results.md", f"# {config.study} ({describe(data)})\n\n{table}\n{figures}")
    log(format_table(output.headers, output.rows, precision=4))
    return output.results


def _study(name: str):
    if name == "mnist_mlp":
        from dlsp.vision.studies.mnist_mlp import run
    elif name == "compression":
        from dlsp.vision.studies.compression import run
    elif name == "cifar_augment":
        from dlsp.vision.studies.cifar_augment import run
    else:
        from dlsp.vision.studies.ssl import run
    return run


def evaluate_run(run_dir: str | os.PathLike[str], data_dir: str | None = None,
                 device_name: str = "auto") -> dict[str, Any]:
    """Test accuracy, macro F1 and the confusion matrix of `run_dir/best.pt` on the test split of its data."""
    import dataclasses

    from dlsp.config import load_config
    from dlsp.metrics.classification import confusion_matrix, macro_f1
    from dlsp.vision.inference import ImageClassifier
    from dlsp.vision.model_file import load_classifier

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "best.pt").is_file():
        raise DlspError("not a finished vision run (needs config.yaml and best.pt)", run_dir)
    config = load_config(VisionConfig, run_dir / "config.yaml")
    if data_dir is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, dir=data_dir))
    loaded = load_classifier(run_dir / "best.pt")
    data = load_vision_data(config.data)
    if data.input_shape != tuple(loaded.model.input_shape):
        raise DlspError(f"the model takes {loaded.model.input_shape} images but the data has {data.input_shape}")
    predicted = ImageClassifier(loaded, device_name).predict(data.test.images)
    labels = list(range(data.n_classes))
    return {"run": str(run_dir), "data": describe(data), "test_accuracy": float(np.mean(predicted == data.test.labels)),
            "macro_f1": macro_f1(data.test.labels, predicted, labels),
            "confusion_matrix": confusion_matrix(data.test.labels, predicted, labels).tolist(),
            "classes": list(data.test.classes)}

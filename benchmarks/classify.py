"""Clip classification benchmark: dlsp mlp, cnn and lstm against a logistic-regression baseline, one table.

Tasks (all from ../shared/data, same run, one thread):

- FSDD official: the dataset's split (takes 0-4 of every speaker are the test set).
- FSDD speaker-held-out: one speaker (chosen by `--fsdd-test-speaker`) is the test set; the others train.
- Arabic Speech Commands: 40 keywords, the training speakers against the 6 official validation speakers.

Each dlsp model is trained by `dlsp.classify.train.train_run` from its recipe (recipes/classify_<model>.yaml plus
the task's feature settings), with validation clips carved from the training clips for early stopping and a
time budget per model (`--seconds`). The baseline is scikit-learn's logistic regression on the mean and standard
deviation over frames of each clip's MFCCs (whole clip, no padding), standardised. Accuracy is clip accuracy on
the test clips; training time is the wall-clock time of training; inference clips/s is measured on the test
clips' precomputed features (feature extraction excluded for every method). Prints one markdown table.

    .venv/bin/python benchmarks/classify.py                                  # ~25 min on one thread
    .venv/bin/python benchmarks/classify.py --seconds 30 --tasks fsdd-official --models mlp
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = {
    # name: (dataset folder, label, data overrides, feature overrides)
    "fsdd-official": ("speech/fsdd", "FSDD, official split (takes 0-4 test)", ["data.split=official"], "fsdd"),
    "fsdd-speaker": ("speech/fsdd", "FSDD, speaker held out", ["data.split=speaker"], "fsdd"),
    "arabic": ("speech/arabic_commands", "Arabic Speech Commands, 40 keywords, 6 validation speakers held out",
               ["data.split=official"], "arabic"),
}
FEATURES = {
    # 8 kHz digits: 64 ms windows, 16 ms hop, 40 mel bands (128 would leave empty bands at this FFT size).
    "fsdd": ["features.n_fft=512", "features.hop_length=128", "features.n_mels=40", "features.segment_seconds=1.0"],
    "arabic": ["features.n_fft=1024", "features.hop_length=256", "features.n_mels=40",
               "features.segment_seconds=1.0"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of " + ", ".join(TASKS))
    parser.add_argument("--models", default="mlp,cnn,lstm", help="comma-separated dlsp models (recipes)")
    parser.add_argument("--seconds", type=float, default=120.0, help="training time budget per model")
    parser.add_argument("--epochs", type=int, default=300, help="epoch limit per model")
    parser.add_argument("--fsdd-test-speaker", default="jackson", help="held-out speaker of fsdd-speaker")
    parser.add_argument("--out", default=str(ROOT / "bench_out" / "classify"))
    parser.add_argument("--cache", default=str(ROOT / "bench_out" / "classify" / "cache"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from _shared import data_folder  # benchmarks/_shared.py, beside this script
    from dlsp.report.tables import format_table

    data_root = data_folder(args.data)
    rows = []
    for task in args.tasks.split(","):
        folder, label, data_overrides, features = TASKS[task]
        overrides = data_overrides + FEATURES[features] + [f"train.epochs={args.epochs}",
                                                            f"train.max_seconds={args.seconds}"]
        if task == "fsdd-speaker":
            overrides.append(f"data.test_speakers=[{args.fsdd_test_speaker}]")
        for model in args.models.split(","):
            print(f"{task}: {model} ...", file=sys.stderr, flush=True)
            rows.append([label, f"dlsp {model}", *run_dlsp(model, data_root / folder, overrides,
                                                            Path(args.out) / task / model, args.cache)])
        print(f"{task}: baseline ...", file=sys.stderr, flush=True)
        rows.append([label, "logistic regression (mean+std MFCC)",
                     *run_baseline(data_root / folder, overrides, args.cache)])
    headers = ["task", "method", "test clips", "accuracy", "macro F1", "train s", "inference clips/s"]
    print(format_table(headers, rows, markdown=True, precision=3))
    return 0


def run_dlsp(model: str, folder: Path, overrides: list[str], out: Path, cache: str) -> list:
    import torch

    from dlsp.classify.inference import Classifier
    from dlsp.classify.train import ClassifyConfig, load_data, train_run
    from dlsp.config import load_config

    config = load_config(ClassifyConfig, ROOT / "recipes" / f"classify_{model}.yaml", overrides)
    data = load_data(config, folder, cache_dir=cache, progress=False)
    _, _, results = train_run(config, data, out, overwrite=True, progress=False, log=lambda line: None)
    classifier = Classifier.from_file(out / "best.pt", device="cpu")
    test = data.sets["test"]
    clips_per_second = _throughput(lambda: classifier.probabilities(test.features), len(test))
    del torch
    scores = results["test"]
    return [scores["clips"], scores["clip_accuracy"], scores["macro_f1"], results["train_seconds"],
            clips_per_second]


def run_baseline(folder: Path, overrides: list[str], cache: str) -> list:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dlsp.classify.train import ClassifyConfig, load_data
    from dlsp.config import load_config
    from dlsp.metrics.classification import accuracy, macro_f1

    config = load_config(ClassifyConfig, None, overrides)
    data = load_data(config, folder, cache_dir=cache, progress=False)  # the same clips and split as the models
    train_x, train_y = clip_statistics(data.sets["train"].paths + data.sets["val"].paths, data.sample_rate,
                                       config.features), np.concatenate([data.sets["train"].targets.numpy(),
                                                                         data.sets["val"].targets.numpy()])
    test_x, test_y = clip_statistics(data.sets["test"].paths, data.sample_rate, config.features), \
        data.sets["test"].targets.numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    start = time.perf_counter()
    model.fit(train_x, train_y)
    train_seconds = time.perf_counter() - start
    predicted = model.predict(test_x)
    clips_per_second = _throughput(lambda: model.predict(test_x), len(test_y))
    return [len(test_y), accuracy(test_y, predicted), macro_f1(test_y, predicted), train_seconds, clips_per_second]


def clip_statistics(paths: list[Path], sample_rate: int, features) -> np.ndarray:
    """Mean and standard deviation over frames of each whole clip's MFCCs: `(clips, 2 * n_mfcc)`."""
    from dlsp.audio.features import mfcc
    from dlsp.audio.io import load_audio

    rows = []
    for path in paths:
        audio, _ = load_audio(path, sample_rate, allow_silent=True)
        coefficients = mfcc(audio, sample_rate, n_mfcc=features.n_mfcc, n_fft=features.n_fft,
                            hop_length=features.hop_length, n_mels=features.n_mels).numpy()
        rows.append(np.concatenate([coefficients.mean(axis=1), coefficients.std(axis=1)]))
    return np.stack(rows)


def _throughput(predict, clips: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict()
        best = min(best, time.perf_counter() - start)
    return clips / best


if __name__ == "__main__":
    sys.exit(main())

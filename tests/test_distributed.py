"""dlsp.train.distributed: sharding, and 2 CPU processes under torchrun matching one process (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from dlsp.train.distributed import batch_length, shard, world

# Trains a tiny regression with fit() and prints the loss curve (rank 0 only, under torchrun or alone).
SCRIPT = """
import json, torch
from dlsp.train import distributed
from dlsp.train.loop import fit

distributed.init_from_env("cpu")
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
generator = torch.Generator().manual_seed(1)
x = torch.randn(64, 4, generator=generator)
y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(64, 1, generator=generator)
batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 64, 8)]
written = []
result = fit(model, lambda m, b: torch.mean((m(b[0]) - b[1]) ** 2), torch.optim.SGD(model.parameters(), lr=0.05),
             lambda epoch: batches, lambda: batches[:2], epochs=6, progress=False,
             on_epoch_end=lambda record, improved: written.append(record["epoch"]))
if distributed.is_main():
    print(json.dumps({"train": [r["train_loss"] for r in result.history],
                      "val": [r["val_loss"] for r in result.history], "written": written,
                      "world": distributed.world()[1]}))
"""


def run_script(tmp_path: Path, nproc: int) -> dict:
    script = tmp_path / "fit_script.py"
    script.write_text(SCRIPT)
    command = [sys.executable, str(script)] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(script)]
    # No retry: a rank that aborted during interpreter shutdown ("terminate called without an active exception",
    # DDP's process group collected after the interpreter began tearing down) is a defect fit() now prevents.
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_shard_takes_every_kth_sample_of_every_part():
    batch = (torch.arange(10), np.arange(10) * 2, {"w": torch.ones(10, 3)}, "label")
    first, second = shard(batch, 0, 2), shard(batch, 1, 2)
    assert first[0].tolist() == [0, 2, 4, 6, 8] and second[1].tolist() == [2, 6, 10, 14, 18]
    assert first[2]["w"].shape == (5, 3) and first[3] == "label"
    assert batch_length(batch) == 10 and batch_length(("x",)) is None
    assert world() == (0, 1)


def test_two_processes_follow_the_single_process_loss_curve(tmp_path):
    alone, pair = run_script(tmp_path, 1), run_script(tmp_path, 2)
    assert pair["world"] == 2 and alone["world"] == 1
    # Same global batch: the averaged gradients of two halves are the whole batch's gradient.
    np.testing.assert_allclose(pair["train"], alone["train"], rtol=1e-4)
    np.testing.assert_allclose(pair["val"], alone["val"], rtol=1e-4)
    assert pair["written"] == list(range(6))  # rank 0's epoch hook ran once per epoch
    assert pair["train"][-1] < 0.5 * pair["train"][0]


def test_dlsp_run_with_two_processes_writes_one_run_folder(tmp_path):
    from dlsp.data.synthetic_corpus import make_synthetic_corpus

    corpus = make_synthetic_corpus(tmp_path / "c", seed=4, n_speakers=5, utterances_per_speaker=2,
                                   noise_files_per_kind=3, noise_seconds=2.0, progress=False)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name": "linear", "args": {"hidden": [8], "context": 1}},
        "stft": {"n_fft": 128, "hop_length": 64}, "data": {"segment_seconds": 0.5, "sample_rate": 8000},
        "train": {"device": "cpu", "patience": None}}))
    done = subprocess.run(
        [sys.executable, "-m", "dlsp", "run", str(recipe), "--input", f"clean={corpus / 'speech'}",
         "--input", f"noise={corpus / 'noise'}", "--out", str(tmp_path / "run"), "--quick", "--quiet",
         "--nproc", "2"], capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("denoise: 2 epochs") == 1  # only rank 0 reports
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "samples").is_dir()

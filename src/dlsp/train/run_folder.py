"""The files every task's run folder shares: the per-epoch log and the state that makes a run resumable.

`last.pt` holds the model and optimiser state, the epoch history, the best epoch and the RNG state after the
latest epoch, written atomically after `metrics.jsonl` got that epoch's line. A run killed at any moment resumes
from the last complete epoch: `resume_state` drops log lines written after the state (killed between the writes).

An existing folder (`check_run_folder`, every training command's rule): a folder that is not empty is refused
unless the run is resumed (`--resume`: continue from its `last.pt`) or overwritten (`--overwrite`: the previous
run's files are removed and training starts afresh). A tracker's own folder (`wandb/`) does not count.

Epoch numbers: `metrics.jsonl`'s `epoch` is the 0-based index of the line; everything written for people counts
from 1, like the printed summaries: `results.json`'s `best_epoch` is N for the Nth epoch (its line is
`metrics.jsonl` line N, `"epoch": N - 1`), and the x axes of the curves start at 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.fileio import append_json_line, atomic_path, check_writable, remove_stale_temp_files, write_text
from dlsp.train.averaging import RunningAverage
from dlsp.train.distributed import is_main
from dlsp.train.loop import FitResult

RESUME_FORMAT = "dlsp-resume/1"
METRICS = "metrics.jsonl"
RESUME = "last.pt"
INPUTS = "inputs.json"
TRACKER_FOLDERS = ("wandb",)  # what a tracker writes into the run folder before training starts


def check_run_folder(out: str | os.PathLike[str], resume: bool = False, overwrite: bool = False,
                     resumable: bool = True) -> None:
    """Fail now, before any data loads, unless `out` can hold this run: a writable place for a new folder or an
    empty one; a resumable run with `resume`; anything with `overwrite` (the refusal names --resume only for
    `resumable` runs). Only rank 0 checks (the others would see its first files)."""
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    if not is_main():
        return
    check_writable(out, folder=True)
    out = Path(out)
    if resume and not (out / RESUME).exists():
        raise DlspError("nothing to resume (no last.pt); start a new run without --resume", out)
    if not (resume or overwrite) and out.is_dir() and any(p.name not in TRACKER_FOLDERS for p in out.iterdir()):
        flags = "--resume to continue it or --overwrite" if resumable else "--overwrite"
        raise DlspError(f"run folder exists and is not empty; use {flags} to start over", out)


def clear_run_files(out: str | os.PathLike[str], names: Sequence[str] = ()) -> None:
    """Remove a previous run's log, checkpoints and results (and the files matching `names`, glob patterns)
    before a new run starts, and the temporary files a killed run left."""
    for name in (METRICS, RESUME, INPUTS, "best.pt", "results.json", *names):
        for path in Path(out).glob(name):
            if path.is_file():
                path.unlink()
    remove_stale_temp_files(out)


def saved_inputs(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The data locations a run in `out` was started with (`inputs.json`, written by the run engine); empty when
    it has none, so a resumed command without its data flags can find them again."""
    path = Path(out) / INPUTS
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DlspError("not readable; give the data folders again", path) from None
    return saved if isinstance(saved, dict) else {}


def append_metrics(out: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Add one epoch's record to `metrics.jsonl` (atomically: never a torn last line)."""
    append_json_line(Path(out) / METRICS, record)


def save_resume_state(out: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer,
                      result: FitResult, average: RunningAverage | None = None) -> None:
    """Write `last.pt` (atomically): everything `resume_state` needs to continue after this epoch (with the
    running weight average, if the run keeps one)."""
    state = {"format": RESUME_FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "history": result.history, "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
             "torch_rng": torch.get_rng_state(), "average": None if average is None else average.state()}
    with atomic_path(Path(out) / RESUME) as tmp:
        torch.save(state, tmp)


def resume_state(out: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer,
                 average: RunningAverage | None = None) -> FitResult:
    """Load `last.pt` into `model`, `optimizer` (and the running weight `average`), restore the RNG, trim the
    log; return the history so far."""
    out = Path(out)
    path = out / RESUME
    if not path.exists():
        raise DlspError("nothing to resume (no last.pt); start a new run without --resume", out)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != RESUME_FORMAT:
            raise ValueError("not a dlsp resume state")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if average is not None:
            average.restore(state.get("average"))
    except Exception as exc:  # a torn or foreign file must not crash with a traceback
        raise DlspError(f"cannot resume from last.pt ({str(exc).splitlines()[0][:120]})", path) from None
    torch.set_rng_state(state["torch_rng"])
    remove_stale_temp_files(out)  # a checkpoint, plot or sample the killed run was writing
    history = state["history"]
    metrics = out / METRICS
    lines = metrics.read_text(encoding="utf-8").splitlines() if metrics.exists() else []
    write_text(metrics, "".join(line + "\n" for line in lines[:len(history)]))
    return FitResult(history=history, best_epoch=state["best_epoch"], best_val_loss=state["best_val_loss"])

"""Data-parallel training with PyTorch DistributedDataParallel, launched by `torchrun` (or `dlsp run --nproc K`).

Under `torchrun` every process runs the same command. `init_from_env` joins the process group (gloo on the CPU,
nccl on GPUs) when `WORLD_SIZE > 1`. The training loop then wraps the model in `DistributedDataParallel` and gives
each process its share of every batch (`shard`: samples `rank, rank + K, ...`), so K processes with batch size B
take the same steps as one process with batch size B: the gradients DDP averages are the full batch's. Every
process computes the same validation (the weights are equal), decisions such as early stopping and time budgets
are agreed on with a collective, and only rank 0 writes files and logs.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from dlsp.errors import DlspError


def init_from_env(device: str = "auto") -> bool:
    """Join the process group `torchrun` describes in the environment; `False` when running alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if dist.is_initialized():
        return True
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    except (RuntimeError, ValueError) as exc:
        raise DlspError(f"cannot join the process group ({str(exc).splitlines()[0][:160]}); start with torchrun "
                        "or dlsp run --nproc K") from None
    # Leave the group before the interpreter tears down: a gloo group destroyed during shutdown can abort the
    # process ("terminate called without an active exception") after training finished.
    atexit.register(_leave_group)
    return True


def _leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """`(rank, world size)`; `(0, 1)` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files and logs (rank 0, or a single process)."""
    return world()[0] == 0


def local_device(device: str) -> str:
    """Under torchrun with GPUs each process uses its own (`cuda:LOCAL_RANK`)."""
    if world()[1] > 1 and (device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())):
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def shard(batch: Any, rank: int, size: int) -> Any:
    """This process's samples of a batch: every `size`-th along the first axis of every tensor/array in it."""
    if isinstance(batch, torch.Tensor | np.ndarray):
        return batch[rank::size]
    if isinstance(batch, tuple | list):
        return type(batch)(shard(item, rank, size) for item in batch)
    if isinstance(batch, dict):
        return {key: shard(value, rank, size) for key, value in batch.items()}
    return batch


def batch_length(batch: Any) -> int | None:
    """Samples in a batch (the first tensor/array's first axis), `None` if it holds none."""
    if isinstance(batch, torch.Tensor | np.ndarray):
        return int(batch.shape[0])
    if isinstance(batch, tuple | list):
        return next((n for item in batch if (n := batch_length(item)) is not None), None)
    if isinstance(batch, dict):
        return next((n for item in batch.values() if (n := batch_length(item)) is not None), None)
    return None


def mean_across(value: float) -> float:
    """The mean of `value` over all processes (itself when alone)."""
    if world()[1] == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor)
    return float(tensor.item()) / world()[1]


def any_across(flag: bool) -> bool:
    """Whether any process says yes (so all stop together)."""
    if world()[1] == 1:
        return flag
    tensor = torch.tensor([1 if flag else 0], device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model in DistributedDataParallel inside a process group; as is otherwise."""
    if world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")

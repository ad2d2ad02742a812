"""Data-parallel training helpers: the process group ``torchrun`` sets up (gloo on CPU, NCCL on CUDA)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def distributed_info() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``).

    Uses the gloo backend on CPU and NCCL on CUDA. Returns ``(rank, world_size)``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return distributed_info()

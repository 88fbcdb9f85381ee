"""The torchrun process group of a training run: set up from the environment, torn down at the end."""
from __future__ import annotations

import os

import torch.distributed as dist

from ..device import pick_device


def rank_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Initialise the process group under torchrun (WORLD_SIZE > 1): nccl on CUDA, gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if pick_device().type == "cuda" else "gloo")
    return rank_world()


def cleanup_distributed() -> None:
    """End of a torchrun job: barrier, then destroy the process group (avoids gloo aborts at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

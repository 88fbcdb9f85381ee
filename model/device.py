"""Device choice: the one place that decides where tensors go (CUDA when there is a GPU, else the CPU)."""
from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` ("cpu", "cuda", "cuda:1", None/"auto"); under torchrun the local rank's GPU. A request
    for CUDA on a machine without one is an error that says so."""
    if requested and requested != "auto":
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} asked for, but torch sees no CUDA GPU here; use 'cpu'.")
        return dev
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")

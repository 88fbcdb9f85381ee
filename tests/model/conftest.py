"""Shared fixtures: offline hub, one thread, a tiny cmr-tiny-like config built once per session."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

from model_helpers import small_config  # noqa: F401

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_cfg():
    return small_config()


@pytest.fixture(scope="session")
def tiny_model(tiny_cfg):
    from model.model import CMRClip
    return CMRClip(tiny_cfg).eval()

"""Shared by every test: the offline hub, one torch thread, and the small models built once per session.

Test helpers are the package `tests.helpers` (tests/ is a package, so `from tests.helpers.x import y`
works from any test folder without touching sys.path).
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.helpers.model_helpers import small_config  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_cfg():
    """A cmr-tiny-shaped config with a 16-frame, 32-px clip."""
    return small_config()


@pytest.fixture(scope="session")
def tiny_model(tiny_cfg):
    """The one small model of the suite: cmr-tiny-shaped, seeded, in eval mode."""
    from cmr_search.model.model import CMRClip
    torch.manual_seed(0)
    return CMRClip(tiny_cfg).eval()

"""tests/ui share the model tests' helpers (fake cache, small config)."""
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

import torch  # noqa: E402

torch.set_num_threads(1)

"""A study's measurements as an input of its study vector (the "measurement token" of issue 18).

    x = measure_features(row)            # a studies-table row (or payload) -> (16,) float32
    v = model.encode_video(frames, view_ids, mask, measures=torch.as_tensor(x[None]))

What transfers from synthetic to real hearts is anatomy, and the segmenter (model/segmentation/, trained
on randomized synthetic hearts only) measures it on real images with known error (docs/segmentation.md):
ACDC dev |LVEF error| median 4.7 points. A CMR-CLIP video tower trained on the phantom's look does not
transfer (ACDC 5-group probe 0.26). So the study vector also sees the numbers every report starts from.

Features: each of MEASURES as a z-score against a broad adult range (REFERENCE: mean, sd; the
Kawel-Turkbey et al. JCMR 2020 normal means, with sds wide enough to span disease), clipped to
+-Z_CLIP, then one presence flag per measure (0 and flag 0 where the study was not measured, the
measurement failed, or its masks were judged `poor`). An indexed value missing for want of height and
weight is taken from the absolute value over a typical adult BSA (1.9 m^2). `MeasureHead` maps them to a
vector added to the video tower's projected output; its last layer starts at zero, so a checkpoint that
gains a head computes exactly what it did before training it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

MEASURES = ("lvedvi", "lvesvi", "lvef", "lv_massi", "max_wall", "rvedvi", "rvesvi", "rvef")
REFERENCE = {"lvedvi": (80.0, 25.0), "lvesvi": (32.0, 20.0), "lvef": (58.0, 15.0), "lv_massi": (60.0, 20.0),
             "max_wall": (10.0, 4.0), "rvedvi": (82.0, 25.0), "rvesvi": (36.0, 20.0), "rvef": (55.0, 12.0)}
ABSOLUTE = {"lvedvi": "lvedv", "lvesvi": "lvesv", "lv_massi": "lv_mass", "rvedvi": "rvedv", "rvesvi": "rvesv"}
TYPICAL_BSA = 1.9          # m^2: an indexed value from an absolute one when height or weight is missing
Z_CLIP = 6.0
N_FEATURES = 2 * len(MEASURES)


def _value(row: dict, name: str) -> float | None:
    v = row.get(name)
    if v is None and row.get(ABSOLUTE.get(name)) is not None:
        v = float(row[ABSOLUTE[name]]) / TYPICAL_BSA
    return None if v is None or np.isnan(float(v)) else float(v)


def measure_features(row: dict | None) -> np.ndarray:
    """A row with measurement fields (studies.parquet, an index payload) -> (N_FEATURES,) float32."""
    out = np.zeros(N_FEATURES, np.float32)
    if not row or row.get("seg_quality") == "poor":
        return out
    for j, name in enumerate(MEASURES):
        v = _value(row, name)
        if v is not None:
            mean, sd = REFERENCE[name]
            out[j] = np.clip((v - mean) / sd, -Z_CLIP, Z_CLIP)
            out[len(MEASURES) + j] = 1.0
    return out


def measure_matrix(rows: list[dict | None]) -> np.ndarray:
    """(N, N_FEATURES) features of many rows."""
    return np.stack([measure_features(r) for r in rows]) if rows else np.zeros((0, N_FEATURES), np.float32)


class MeasureHead(nn.Module):
    """features (B, N_FEATURES) -> (B, embed_dim), added to the projected study vector; zero at init."""

    def __init__(self, embed_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, embed_dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

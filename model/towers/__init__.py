"""Video towers: (frames (B, F, H, W) in [0, 1], view_ids (B, F), mask (B, F)) -> features (B, width)."""
from __future__ import annotations

from ..config import VideoConfig
from .spacetime import SpaceTimeTransformer
from .tiny import TinyVideo


def build_video_tower(cfg: VideoConfig):
    if cfg.kind == "tiny":
        return TinyVideo(cfg)
    return SpaceTimeTransformer(cfg)

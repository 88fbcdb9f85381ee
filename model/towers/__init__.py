"""Video towers: (frames (B, F, H, W) in [0, 1], view_ids (B, F), mask (B, F)) -> features (B, width)."""
from __future__ import annotations

from ..config import VideoConfig


def build_video_tower(cfg: VideoConfig):
    if cfg.kind == "tiny":
        from .tiny import TinyVideo
        return TinyVideo(cfg)
    from .spacetime import SpaceTimeTransformer
    return SpaceTimeTransformer(cfg)

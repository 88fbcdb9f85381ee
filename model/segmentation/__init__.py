"""Cine short-axis segmentation: a 2-D U-Net trained on synthetic hearts only, and what it measures.

    seg = Segmenter.load()                       # shipped checkpoint (or $CMR_SEG_CHECKPOINT / a folder)
    masks = seg.segment_cine(stack, spacing)     # (S, T, H, W) float -> (S, T, H, W) uint8, LABELS below
"""
from .config import LABELS, SegConfig, load_seg_config
from .segmenter import Segmenter

__all__ = ["LABELS", "SegConfig", "Segmenter", "load_seg_config"]

"""Randomized anatomy for segmenter training: one synthetic heart, posed, deformed and cut at random.

Shape variety goes well beyond one template: every heart is a fresh draw of the phantom's procedural
shape space (cases.params: class drawn uniformly, so dilated, hypertrophic, infarcted with aneurysm,
apical-HCM, RV-dilated hearts are as common as normal ones; wall thickness per segment, sphericity,
septal flattening, papillary muscles and trabeculation from heart/cavity.py), then
  * a random affine about the LV base centre (per-axis scale 0.8-1.25, shear, up to 12 deg tilt of the
    cut against the true long axis), and
  * a smooth random elastic displacement (a sum of 3-D plane waves, 40-140 mm wavelength, 1-5 mm),
so the short-axis cuts are no longer circles and crescents of one analytic family. Each cut has its
own depth (base - 12 mm .. apex + 8 mm: slices beyond the heart teach when not to segment), heart
phase (0..1 of RR), in-plane rotation (any angle), optional mirror, pixel size and field-of-view
offset (the heart anywhere in the crop). Tissue is sampled on a grid `oversample` times finer than the
pixels, at `slab` depths across the slice thickness, for partial volume in both directions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import CLASSES
from cmr_search.phantom.heart import anatomy
from cmr_search.phantom.heart.geometry import HeartFrame, rotate_about, unit

HEART_ORIGIN_LPS = np.array([20.0, -10.0, 0.0])   # mean LV base centre, as phantom.generate
DEPTH_MARGIN_MM = (12.0, 8.0)                      # cuts reach this far above the base / below the apex


@dataclass
class SceneConfig:
    size: int = 96                          # output pixels per side
    pixel_mm: tuple[float, float] = (1.6, 2.6)   # pixel size range, mm (nominal 2.0: +-25 % scale)
    oversample: int = 2                     # in-plane tissue samples per pixel per axis
    slab: int = 3                           # tissue samples across the slice thickness
    thickness_mm: tuple[float, float] = (5.0, 10.0)   # slice thickness range
    offset_mm: float = 45.0                 # heart centre up to this far from the crop centre
    elastic_mm: tuple[float, float] = (1.0, 5.0)      # elastic displacement amplitude range
    scale: tuple[float, float] = (0.8, 1.25)           # per-axis anatomical scale range
    tilt_deg: float = 12.0                  # cut plane tilt against the long axis
    mirror_p: float = 0.5                   # chance of a mirrored image (stored orientation varies)
    random_contrast_p: float = 0.5          # appearance: chance of a fully random contrast (else bSSFP-like)


@dataclass
class Cut:
    """One slice's tissue: `tissue` (slab, H·k, W·k) uint8 codes; `lge` same shape; `centre` (H, W)
    codes at the pixel centres, mid slab (the label map)."""
    tissue: np.ndarray
    lge: np.ndarray
    centre: np.ndarray
    pixel_mm: float
    thickness_mm: float


class Warp:
    """Random affine + smooth elastic map applied to sample points before the heart is asked."""

    def __init__(self, rng, origin: np.ndarray, cfg: SceneConfig):
        self.origin = origin
        a = np.diag(rng.uniform(*cfg.scale, size=3)) + rng.normal(0, 0.06, (3, 3)) * (1 - np.eye(3))
        self.inv = np.linalg.inv(a).astype(np.float32)
        k = 3
        self.waves = (unit_rows(rng.normal(size=(k, 3))) * (2 * np.pi / rng.uniform(40, 140, (k, 1)))).astype(np.float32)
        self.dirs = (unit_rows(rng.normal(size=(k, 3))) * rng.uniform(*cfg.elastic_mm, (k, 1))).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, k).astype(np.float32)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        rel = pts.astype(np.float32) - self.origin.astype(np.float32)
        out = rel @ self.inv.T
        s = np.sin(rel @ self.waves.T + self.phase)                 # (..., k)
        return out + s @ self.dirs + self.origin.astype(np.float32)


def unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def draw_heart(rng, index: int) -> tuple[anatomy.Heart, HeartFrame]:
    """A fresh heart of a uniformly drawn class, in a random pose in a random body."""
    label = str(rng.choice(CLASSES))
    latent = params.sample_latent(rng, index, label)
    frame = HeartFrame.from_angles(HEART_ORIGIN_LPS + rng.normal(0, 6, 3), rng.uniform(20, 70),
                                   rng.uniform(5, 50), rng.uniform(-30, 30))
    return anatomy.Heart(latent, frame), frame


def _plane_axes(rng, frame: HeartFrame, cfg: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Row and column directions of a short-axis cut: tilted, rotated in plane, maybe mirrored."""
    normal = rotate_about(-frame.u, unit(rng.normal(size=3)), rng.uniform(0, cfg.tilt_deg))
    row = unit(np.cross(normal, rng.normal(size=3)))
    col = np.cross(normal, row)
    if rng.random() < cfg.mirror_p:
        col = -col
    return row, col


def cut(heart: anatomy.Heart, frame: HeartFrame, warp: Warp, rng, cfg: SceneConfig) -> Cut:
    """One random short-axis slice through `heart` (see the module docstring)."""
    z_base, z_apex = heart.sax_extent()
    z = rng.uniform(z_base - DEPTH_MARGIN_MM[0], z_apex + DEPTH_MARGIN_MM[1])
    t = rng.random()
    sp, th = rng.uniform(*cfg.pixel_mm), rng.uniform(*cfg.thickness_mm)
    row, col = _plane_axes(rng, frame, cfg)
    normal = np.cross(row, col)
    off = rng.normal(0, cfg.offset_mm / 2, 2).clip(-cfg.offset_mm, cfg.offset_mm)
    centre = frame.to_lps(np.array([0.0, 0.0, z])) + off[0] * row + off[1] * col
    n, k = cfg.size, cfg.oversample
    fine = (np.arange(n * k) + 0.5) / k - 0.5 - (n - 1) / 2
    grid = (sp * fine)[None, :, None] * row + (sp * fine)[:, None, None] * col      # (Hk, Wk, 3)
    depths = (np.arange(cfg.slab) + 0.5) / cfg.slab - 0.5
    pts = centre + grid[None] + (th * depths)[:, None, None, None] * normal       # (slab, Hk, Wk, 3)
    tissue, lge = heart.sample(warp(pts.reshape(-1, 3)), t)
    mid = (np.arange(n) - (n - 1) / 2) * sp
    pc = centre + mid[None, :, None] * row + mid[:, None, None] * col
    centre_codes, _ = heart.sample(warp(pc.reshape(-1, 3)), t)
    shape = (cfg.slab, n * k, n * k)
    return Cut(tissue.reshape(shape), lge.reshape(shape), centre_codes.reshape(n, n), sp, th)

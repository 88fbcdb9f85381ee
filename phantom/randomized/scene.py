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

from dataclasses import dataclass, replace

import numpy as np

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import CLASSES
from cmr_search.phantom.heart import anatomy, cavity
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
    rv_variety: float = 0.0                 # chance a heart's RV is redrawn (RandomRV: arc, base, length, size)
    lv_variety: float = 0.0                 # chance a heart's LV is redrawn (RandomLV: wall, size, EF)
    es_share: float = 0.0                   # chance a cut is taken near end-systole (else any phase)
    trab_variety: float = 0.0               # chance a heart's LV gets a dense trabecular fringe (RandomTrab)
    blood_variety: float = 0.0              # chance an image's RV/atrial/aortic blood gets its own brightness
    trab_cap: float = 0.0                   # > 0: a dense fringe reaches at most this fraction of the cavity radius
    min_blood_contrast: float = 0.0         # > 0: blood and heart muscle means at least this far apart (0..1 scale)


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


@dataclass
class RandomRV:
    """A redrawn RV: the phantom's classes give a narrow family of crescents (120 deg arc, narrow at the
    annulus, modest volumes), while real RVs wrap further round the septum, are widest at the base and
    reach 250 mL when dilated. Ranges are anatomical (insertion arc 90-160 deg, RV EDVI 55-190 mL/m2,
    RVEF 15-70 %), not fitted to any image set."""
    insertion_deg: tuple[float, float]
    end_s: float
    base_width: float
    arc_power: float
    edvi_scale: float
    ef: float | None

    @classmethod
    def draw(cls, rng) -> "RandomRV":
        ins = (float(rng.uniform(12, 45)), float(rng.uniform(135, 172)))
        ef = float(rng.uniform(15, 70)) if rng.random() < 0.5 else None
        return cls(ins, float(rng.uniform(0.7, 0.95)), float(rng.uniform(0.6, 1.3)), float(rng.uniform(0.15, 0.6)),
                   float(np.exp(rng.uniform(np.log(0.8), np.log(1.9)))), ef)

    def apply(self, latent, frame: HeartFrame) -> anatomy.Heart:
        edvi = float(np.clip(latent.rv_edvi * self.edvi_scale, 55, 190))
        latent = replace(latent, rv_edvi=edvi, rv_ef=latent.rv_ef if self.ef is None else self.ef)
        return RedrawnRVHeart(latent, frame, self)


class RedrawnRVHeart(anatomy.Heart):
    """anatomy.Heart whose RV crescent takes its shape from a RandomRV."""

    def __init__(self, latent, frame: HeartFrame, rv: RandomRV):
        self.rv_insertion_deg, self.rv_end_s = rv.insertion_deg, rv.end_s
        self.rv_base_width, self.rv_arc_power = rv.base_width, rv.arc_power
        super().__init__(latent, frame)


@dataclass
class RandomLV:
    """A redrawn LV: walls thickened up to 1.8x (massive hypertrophy, 35 mm at most), cavity volume
    scaled 0.7-1.6x, and on half the hearts an LVEF drawn from 15-85 %, so small, nearly obliterated
    end-systolic cavities inside thick grey walls (hypertrophic hearts at ES) are seen in training."""
    wall_scale: float
    edvi_scale: float
    ef: float | None

    @classmethod
    def draw(cls, rng) -> "RandomLV":
        ef = float(rng.uniform(15, 85)) if rng.random() < 0.5 else None
        return cls(float(rng.uniform(1.0, 1.8)), float(np.exp(rng.uniform(np.log(0.7), np.log(1.6)))), ef)

    def apply(self, latent):
        wall = tuple(float(min(w * self.wall_scale, 35.0)) for w in latent.wall_ed_mm)
        return replace(latent, wall_ed_mm=wall, lv_edvi=float(latent.lv_edvi * self.edvi_scale),
                       lv_ef=latent.lv_ef if self.ef is None else self.ef)


@dataclass
class RandomTrab:
    """A dense LV trabecular fringe: real dilated and many normal LVs show a band of dark trabeculae
    inside the compact wall that experts (ACDC) draw as cavity, while the phantom's fringe is sparse
    (5-35 % cover, <= 2.8 mm); a segmenter that never saw a dense one calls it myocardium, shrinking the
    cavity and thickening the wall. Cover 25-85 %, depth 2-7 mm; labelled cavity, rendered as muscle.
    `max_frac` > 0 (SceneConfig.trab_cap) caps its depth at that fraction of the local cavity radius: a
    fixed 2-7 mm fringe fills a small end-systolic cavity with cavity-labelled muscle, which taught the
    segmenter to call the grey, obliterated ES cavity of a hypertrophic heart cavity (experts draw it as
    wall); with the cap a cavity labelled as such always keeps a blood core."""
    cover: tuple[float, float]
    depth_mm: tuple[float, float]

    @classmethod
    def draw(cls, rng) -> "RandomTrab":
        base = float(rng.uniform(0.1, 0.5))
        return cls((base, float(rng.uniform(max(base, 0.25), 0.85))), (2.0, float(rng.uniform(3.0, 7.0))))

    def apply(self, heart: anatomy.Heart, rng, max_frac: float = 0.0) -> anatomy.Heart:
        heart.set_lv_trabeculae(cavity.heavy_lv_fringe(rng, self.cover, self.depth_mm), max_frac)
        return heart


def draw_heart(rng, index: int, rv_variety: float = 0.0, lv_variety: float = 0.0,
               trab_variety: float = 0.0, trab_cap: float = 0.0) -> tuple[anatomy.Heart, HeartFrame]:
    """A fresh heart of a uniformly drawn class, in a random pose in a random body; with probability
    `rv_variety` its RV is redrawn (RandomRV), with `lv_variety` its LV (RandomLV), with `trab_variety`
    its LV trabeculae (RandomTrab). A share of 0 draws nothing extra, so older seeds reproduce."""
    label = str(rng.choice(CLASSES))
    latent = params.sample_latent(rng, index, label)
    frame = HeartFrame.from_angles(HEART_ORIGIN_LPS + rng.normal(0, 6, 3), rng.uniform(20, 70),
                                   rng.uniform(5, 50), rng.uniform(-30, 30))
    rv = RandomRV.draw(rng) if rv_variety and rng.random() < rv_variety else None
    if lv_variety and rng.random() < lv_variety:
        latent = RandomLV.draw(rng).apply(latent)
    heart = rv.apply(latent, frame) if rv else anatomy.Heart(latent, frame)
    if trab_variety and rng.random() < trab_variety:
        heart = RandomTrab.draw(rng).apply(heart, rng, trab_cap)
    return heart, frame


def cut_phase(heart: anatomy.Heart, rng, es_share: float) -> float:
    """Cycle time of one cut: uniform over RR, or with probability `es_share` near end-systole (where
    cavities are small and walls thick: the hard case for a segmenter)."""
    if es_share and rng.random() < es_share:
        return float(np.clip(heart.es_fraction + rng.normal(0, 0.04), 0.0, 0.999))
    return rng.random()


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
    t = cut_phase(heart, rng, cfg.es_share)
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

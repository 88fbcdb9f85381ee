"""The static body around the heart: chest wall, ribs, sternum, lungs, mediastinum, spine, aorta,
diaphragm, liver, stomach, pleural fluid, air.

Everything is analytic (ellipses extruded along the patient's z, a two-dome diaphragm) in patient LPS
(+x left, +y posterior, +z head). The habitus (body ellipse, subcutaneous fat, muscle) comes from a
per-study seed of the study index and the patient's height and weight only, so it is
class-independent. The body is then placed around the heart the way a chest is: its midline 30 mm to
the patient's right of the LV base, the anterior chest wall just in front of the heart's most anterior
point (the RV lies behind the sternum and costal cartilage) and the diaphragm domes at the level of
the heart's inferior surface (left lobe of the liver under the heart, stomach on the patient's left).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmr_search.phantom.cases.latent import TISSUE
from cmr_search.phantom.randomness import patient_rng

HALF_WIDTH, HALF_DEPTH = 170.0, 120.0     # mm, default outer body semi-axes (x, y)
FAT_MM, MUSCLE_MM = 15.0, 12.0            # default subcutaneous fat, chest-wall muscle thickness
MIDLINE_DX, CENTRE_DY = -30.0, 20.0       # default body centre relative to the heart origin (x, y)
WALL_GAP_MM = 2.0                         # heart surface to the inner anterior chest wall
RIB_PITCH_MM, RIB_SLOPE = 36.0, 0.45      # rib spacing along z; ribs run down toward anterior
AORTA_R, AORTA_WALL = 12.5, 1.5           # descending aorta lumen radius, wall, mm


@dataclass(frozen=True)
class Body:
    """Placement, habitus and pleural fluid of the static body."""
    centre: np.ndarray            # (3,) LPS mm: body midline at the heart-origin level
    pleural_mm: tuple[float, float]   # (right, left) depth of dependent pleural fluid
    half_width: float = HALF_WIDTH    # outer ellipse semi-axis along x, mm
    half_depth: float = HALF_DEPTH    # outer ellipse semi-axis along y, mm
    fat_mm: float = FAT_MM            # subcutaneous fat thickness, mm
    muscle_mm: float = MUSCLE_MM      # chest-wall muscle thickness, mm
    z_heart_bottom: float = -60.0     # heart's most inferior point, z relative to centre, mm
    aorta_xy: tuple[float, float] = (25.0, 48.0)  # descending aorta centre relative to centre, mm

    @classmethod
    def around(cls, origin, pleural_mm=(0.0, 0.0), hull=None, habitus=None,
               contact=None) -> "Body":
        """Body around a heart whose LV base centre is `origin` (LPS). hull (N, 3): LPS points of
        the heart's outer surface (None: the fixed default placement); contact (M, 3): the part
        of it the anterior chest wall must touch (default: all); habitus: (half_width,
        half_depth, fat_mm, muscle_mm) from `habitus()` (None: defaults)."""
        o = np.asarray(origin, np.float64)
        hw, hd, fat, mus = habitus if habitus is not None else (HALF_WIDTH, HALF_DEPTH, FAT_MM,
                                                                 MUSCLE_MM)
        pl = (float(pleural_mm[0]), float(pleural_mm[1]))
        if hull is None:
            return cls(o + np.array([MIDLINE_DX, CENTRE_DY, 0.0]), pl, hw, hd, fat, mus)
        hull = np.asarray(hull, np.float64)
        xm = o[0] + MIDLINE_DX
        ai, bi = hw - fat - mus, hd - fat - mus
        con = hull if contact is None else np.asarray(contact, np.float64)
        front = bi * np.sqrt(np.clip(1.0 - ((con[:, 0] - xm) / ai) ** 2, 0.05, 1.0))
        yc = float(np.min(con[:, 1] + front)) - WALL_GAP_MM
        centre = np.array([xm, yc, o[2]])
        zb = float(hull[:, 2].min() - o[2])
        return cls(centre, pl, hw, hd, fat, mus, zb, _aorta_xy(hull - centre, bi))


def habitus(study_index: int, height_cm: float, weight_kg: float) -> tuple[float, ...]:
    """(half_width, half_depth, fat_mm, muscle_mm) of the body ellipse: BMI-driven with a per-study
    random part seeded by the study index, height and weight (nothing class-bearing)."""
    rng = patient_rng(study_index, height_cm, weight_kg, 4243)
    bmi = weight_kg / max(height_cm / 100.0, 1.0) ** 2
    hw = float(np.clip(150.0 + 2.0 * (bmi - 24.0) + rng.normal(0, 7), 135.0, 195.0))
    hd = float(np.clip(hw * rng.uniform(0.66, 0.76), 95.0, 140.0))
    fat = float(np.clip(8.0 + 1.2 * (bmi - 20.0) + rng.normal(0, 3), 6.0, 32.0))
    mus = float(rng.uniform(9.0, 15.0))
    return hw, hd, fat, mus


def _aorta_xy(rel: np.ndarray, bi: float) -> tuple[float, float]:
    """Descending aorta left-anterior of the spine, pushed back when the LA reaches that far."""
    x, y = 25.0, bi - 72.0
    near = np.abs(rel[:, 0] - x) < AORTA_R + 8.0
    if near.any():
        y = max(y, float(rel[near, 1].max()) + AORTA_R + 4.0)
    return x + 0.25 * max(y - (bi - 72.0), 0.0), min(y, bi - 52.0)


def _ell(x, y, ax: float, ay: float):
    """Squared normalised ellipse radius (< 1 inside)."""
    return (x / ax) ** 2 + (y / ay) ** 2


def labels(body: Body, pts: np.ndarray) -> np.ndarray:
    """(N,) uint8 tissue code of each (N, 3) LPS point."""
    c = body.centre.astype(np.float32)
    x, y, z = (pts[:, i].astype(np.float32) - c[i] for i in range(3))
    out = np.full(x.shape, TISSUE["air"], np.uint8)
    ai = body.half_width - body.fat_mm - body.muscle_mm
    bi = body.half_depth - body.fat_mm - body.muscle_mm
    out[_ell(x, y, body.half_width, body.half_depth) < 1] = TISSUE["fat"]
    out[_ell(x, y, body.half_width - body.fat_mm, body.half_depth - body.fat_mm) < 1] = \
        TISSUE["muscle"]
    e_in = _ell(x, y, ai, bi)
    thorax = e_in < 1
    out[thorax] = TISSUE["lung"]
    _ribs(x, y, z, e_in, bi, out)
    _pleural(body, x, y, thorax, ai, bi, out)
    _abdomen(body, x, y, z, thorax, out)
    _mediastinum(body, x, y, z, bi, out)
    _spine(x, y, bi, out)
    return out


def _ribs(x, y, z, e_in, bi: float, out) -> None:
    """Ribs in the chest wall (marrow with a dark cortex), costal cartilage anteriorly (muscle-like),
    the sternum at the anterior midline."""
    ring = (e_in >= 1.0) & (e_in < (1.0 + 9.0 / bi) ** 2)
    phase = np.cos(2.0 * np.pi * (z + RIB_SLOPE * y) / RIB_PITCH_MM)
    rib = ring & (phase > 0.7) & ~((np.abs(x) < 45.0) & (y < 0))
    out[rib] = TISSUE["cortex"]
    out[rib & (phase > 0.88) & (e_in > (1.0 + 2.0 / bi) ** 2) & (e_in < (1.0 + 7.0 / bi) ** 2)] = \
        TISSUE["bone"]
    st = _ell(x, y + bi + 4.0, 15.0, 7.5)
    out[st < 1] = TISSUE["cortex"]
    out[_ell(x, y + bi + 4.0, 12.5, 5.0) < 1] = TISSUE["bone"]


def _pleural(body: Body, x, y, thorax, ax: float, ay: float, out) -> None:
    """Dependent (posterior) fluid: lung points within depth of the posterior thorax wall."""
    for depth, side in zip(body.pleural_mm, (x < 0, x >= 0)):
        if depth <= 0:
            continue
        y_post = ay * np.sqrt(np.clip(1.0 - (x / ax) ** 2, 0.0, 1.0))
        out[thorax & side & (y > y_post - depth) & (out == TISSUE["lung"])] = TISSUE["pleural_fluid"]


def _abdomen(body: Body, x, y, z, thorax, out) -> None:
    """Two diaphragm domes (the right one higher); under them the liver (its left lobe under the
    heart), the stomach with fluid and an anterior air cap on the left, the spleen behind it."""
    zb = np.float32(body.z_heart_bottom)
    dome_r = zb + 22.0 - 0.0035 * ((x + 60.0) ** 2 + 0.5 * y * y)
    dome_l = zb - 3.0 - 0.0035 * ((x - 55.0) ** 2 + 0.5 * y * y)
    zd = np.maximum(dome_r, dome_l)
    below = thorax & (z < zd)
    out[below] = TISSUE["muscle"]                                    # diaphragm, then viscera
    deep = below & (z < zd - 5.0)
    liver = deep & (x < 35.0 - 0.35 * y)
    out[deep & ~liver] = TISSUE["muscle"]
    out[liver] = TISSUE["liver"]
    sx, sy, sz = x - 70.0, y + 5.0, z - (zb - 48.0)
    sq = (sx / 48.0) ** 2 + (sy / 42.0) ** 2 + (sz / 40.0) ** 2
    stomach = deep & ~liver & (sq < 1)
    out[stomach] = TISSUE["muscle"]
    lumen = stomach & (sq < 0.8)
    out[lumen] = TISSUE["gastric"]
    out[lumen & (sy < -18.0)] = TISSUE["air"]
    out[deep & ~liver & ~stomach & (x > 60.0) & (y > 25.0)] = TISSUE["liver"]   # spleen


def _mediastinum(body: Body, x, y, z, bi: float, out) -> None:
    """Retrosternal and posterior-mediastinal fat, oesophagus, descending aorta, upper mediastinum."""
    out[_ell(x - 8.0, y + bi - 9.0, 38.0, 12.0) < 1] = TISSUE["fat"]         # retrosternal
    ax, ay = body.aorta_xy
    out[_ell(x - 0.6 * ax, y - ay, 30.0, 17.0) < 1] = TISSUE["fat"]          # posterior mediastinum
    out[_ell(x - (ax - 22.0), y - ay + 4.0, 7.0, 6.0) < 1] = TISSUE["muscle"]  # oesophagus
    d2 = (x - ax) ** 2 + (y - ay) ** 2
    out[d2 < (AORTA_R + AORTA_WALL) ** 2] = TISSUE["muscle"]
    out[d2 < AORTA_R ** 2] = TISSUE["aorta_blood"]
    out[(z > 25.0) & (_ell(x + 5.0, y + 10.0, 26.0, 70.0) < 1)] = TISSUE["fat"]  # upper mediastinum


def _spine(x, y, bi: float, out) -> None:
    """Vertebral body (marrow in a cortex), canal with CSF and cord, arch, paraspinal muscles."""
    yv = bi - 36.0
    yc = yv + 28.0
    para = (_ell(np.abs(x) - 30.0, y - (yc + 14.0), 22.0, 24.0) < 1)
    out[para] = TISSUE["muscle"]
    out[_ell(x, y - (yc + 20.0), 5.0, 16.0) < 1] = TISSUE["bone"]              # spinous process
    out[_ell(x, y - (yc + 7.0), 15.0, 5.0) < 1] = TISSUE["bone"]               # lamina
    out[_ell(x, y - yv, 21.0, 18.0) < 1] = TISSUE["cortex"]
    out[_ell(x, y - yv, 18.5, 15.5) < 1] = TISSUE["bone"]
    out[_ell(x, y - yc, 8.5, 8.0) < 1] = TISSUE["csf"]
    out[_ell(x, y - yc, 4.5, 4.0) < 1] = TISSUE["muscle"]                      # cord

"""The static body around the heart: chest wall, lungs, mediastinum, spine, liver, pleural fluid, air.

Everything is an analytic cylinder/ellipse in patient LPS (+x left, +y posterior, +z head), placed
relative to the heart's origin (LV base centre) so that the heart always sits in the anterior-left
chest: the body's midline lies 30 mm to the patient's right of the LV base and its AP centre 20 mm
behind it. Cross-section 340 x 240 mm, so a 350 mm FOV shows chest wall and both lungs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom.latent import TISSUE

HALF_WIDTH, HALF_DEPTH = 170.0, 120.0     # mm, outer body ellipse semi-axes (x, y)
FAT_MM, MUSCLE_MM = 15.0, 12.0            # subcutaneous fat, chest-wall muscle thickness
MIDLINE_DX, CENTRE_DY = -30.0, 20.0       # body centre relative to the heart origin (x, y)


@dataclass(frozen=True)
class Body:
    """Placement and pleural fluid of the static body."""
    centre: np.ndarray            # (3,) LPS mm, body axis point at the heart-origin level
    pleural_mm: tuple[float, float]   # (right, left) depth of dependent pleural fluid

    @classmethod
    def around(cls, origin, pleural_mm=(0.0, 0.0)) -> "Body":
        o = np.asarray(origin, np.float64)
        return cls(o + np.array([MIDLINE_DX, CENTRE_DY, 0.0]), (float(pleural_mm[0]),
                                                                float(pleural_mm[1])))


def _ell(x, y, ax: float, ay: float):
    """Squared normalised ellipse radius (< 1 inside)."""
    return (x / ax) ** 2 + (y / ay) ** 2


def labels(body: Body, pts: np.ndarray) -> np.ndarray:
    """(N,) uint8 tissue code of each (N, 3) LPS point."""
    c = body.centre.astype(np.float32)
    x, y, z = (pts[:, i].astype(np.float32) - c[i] for i in range(3))
    out = np.full(x.shape, TISSUE["air"], np.uint8)
    inner_ax, inner_ay = HALF_WIDTH - FAT_MM - MUSCLE_MM, HALF_DEPTH - FAT_MM - MUSCLE_MM
    out[_ell(x, y, HALF_WIDTH, HALF_DEPTH) < 1] = TISSUE["fat"]
    out[_ell(x, y, HALF_WIDTH - FAT_MM, HALF_DEPTH - FAT_MM) < 1] = TISSUE["muscle"]
    thorax = _ell(x, y, inner_ax, inner_ay) < 1
    out[thorax] = TISSUE["lung"]
    _pleural(body, x, y, thorax, inner_ax, inner_ay, out)
    out[thorax & (z > 20) & (_ell(x + 5, y + 10, 24, 75) < 1)] = TISSUE["fat"]  # upper mediastinum
    out[thorax & (np.abs(x) < 40) & (y > 55)] = TISSUE["muscle"]              # paraspinal
    out[_ell(x - 25, y - 48, 12, 12) < 1] = TISSUE["aorta_blood"]            # descending aorta
    vert = _ell(x, y - 72, 19, 17) < 1
    out[vert | (_ell(x, y - 95, 9, 14) < 1)] = TISSUE["bone"]                 # vertebra + arch
    _abdomen(x, y, z, thorax, out)
    return out


def _pleural(body: Body, x, y, thorax, ax: float, ay: float, out) -> None:
    """Dependent (posterior) fluid: lung points within depth of the posterior thorax wall."""
    for depth, side in zip(body.pleural_mm, (x < 0, x >= 0)):
        if depth <= 0:
            continue
        y_post = ay * np.sqrt(np.clip(1.0 - (x / ax) ** 2, 0.0, 1.0))
        out[thorax & side & (y > y_post - depth) & (out == TISSUE["lung"])] = TISSUE["pleural_fluid"]


def _abdomen(x, y, z, thorax, out) -> None:
    """Liver under the right hemidiaphragm, soft tissue under the left (lower domes)."""
    below = thorax & (out == TISSUE["lung"]) | thorax & (out == TISSUE["pleural_fluid"])
    dome_r = -45.0 - 0.004 * ((x + 60) ** 2 + 0.6 * y ** 2)
    dome_l = -80.0 - 0.004 * ((x - 70) ** 2 + 0.6 * y ** 2)
    out[below & (x < 20) & (z < dome_r)] = TISSUE["liver"]
    out[below & (x >= 20) & (z < dome_l)] = TISSUE["muscle"]

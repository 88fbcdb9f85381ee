"""Structures above the LV base (z < z_base in heart-local coordinates): atria, aortic root, AV fat.

The left atrium sits behind/above the mitral plane (offset toward the inferolateral side of the base),
the right atrium beside it on the septal side, sharing an interatrial septum (atrial_wall_mm thick).
Both hang from a fixed roof and rest on the moving base, so they lengthen as the base descends in
systole (LA largest at ES). The aortic root leaves the anteroseptal base (the LVOT side, seen in the
3CH view) with diameter aortic_root_mm. Geometry is heart-local mm (lat, ant, z).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmr_search.phantom.cases.latent import TISSUE, Latent

NONE = 255                      # "no heart structure here" (the body shows through)
LA_DIR_DEG, RA_DIR_DEG, AO_DIR_DEG = 215.0, 100.0, 60.0   # directions in the base plane (segments.py)
AO_LENGTH_MM, AO_WALL_MM, AV_FAT_MM = 90.0, 2.0, 10.0


def _dir(deg: float) -> np.ndarray:
    """(2,) in-plane unit vector (lat, ant) of a myocardial angle."""
    a = np.deg2rad(deg)
    return np.array([-np.sin(a), np.cos(a)])


@dataclass(frozen=True)
class Atria:
    """Static description of the atria and aortic root (time enters through z_base)."""
    la_centre: np.ndarray        # (2,) LA axis (lat, ant) mm
    la_axes: tuple[float, float]  # LA in-plane semi-axes (lat, ant) mm
    la_roof: float               # z of the LA roof (fixed) mm
    ra_centre: np.ndarray        # (2,) RA axis (lat, ant) mm
    ra_axes: tuple[float, float]  # RA in-plane semi-axes mm
    ra_roof: float               # z of the RA roof mm
    sep_point: np.ndarray        # (2,) a point of the interatrial septum plane
    sep_dir: np.ndarray          # (2,) unit normal of the septum plane, LA -> RA
    wall: float                  # atrial wall / septum thickness mm
    ao_start: np.ndarray         # (3,) aortic valve centre at the ED base (z = 0)
    ao_dir: np.ndarray           # (3,) unit direction of the ascending aorta
    ao_radius: float             # mm

    @classmethod
    def build(cls, latent: Latent, r_base: float) -> "Atria":
        """r_base: LV cavity radius at the base (mm), used to place the valves."""
        sl, sr = np.sqrt(max(latent.la_scale, 0.3)), np.sqrt(max(latent.ra_scale, 0.3))
        la_axes, ra_axes = (21.0 * sl, 19.0 * sl), (20.0 * sr, 20.0 * sr)
        la_c = 0.35 * r_base * _dir(LA_DIR_DEG)
        d = _dir(RA_DIR_DEG)
        gap = 0.85 * (la_axes[0] + ra_axes[0])
        ra_c = la_c + gap * d
        sep = la_c + d * gap * la_axes[0] / (la_axes[0] + ra_axes[0])
        ao = 0.5 * r_base * _dir(AO_DIR_DEG)
        v = np.array([-0.15, 0.3, -1.0])
        return cls(la_c, la_axes, -50.0 * sl, ra_c, ra_axes, -45.0 * sr, sep, d,
                   float(latent.atrial_wall_mm), np.array([ao[0], ao[1], 0.0]),
                   v / np.linalg.norm(v), 0.5 * float(latent.aortic_root_mm))

    def extent(self) -> tuple[float, float]:
        """(max in-plane distance from the LV axis, lowest z) covered, mm."""
        r = max(np.linalg.norm(self.la_centre) + max(self.la_axes),
                np.linalg.norm(self.ra_centre) + max(self.ra_axes)) + self.wall
        r = max(r, np.linalg.norm(self.ao_start[:2] + AO_LENGTH_MM * self.ao_dir[:2])
                + self.ao_radius + AO_WALL_MM)
        z = min(self.la_roof, self.ra_roof) - self.wall
        return float(r), float(min(z, AO_LENGTH_MM * self.ao_dir[2]) - 5.0)


def _q(lat, ant, z, centre, axes, roof: float, z_base: float):
    """Squared normalised radius of an atrium hanging from `roof` down to the base."""
    zc, c = 0.5 * (roof + z_base), max(0.5 * (z_base - roof), 1.0)
    return ((lat - centre[0]) / axes[0]) ** 2 + ((ant - centre[1]) / axes[1]) ** 2 + ((z - zc) / c) ** 2


def classify(at: Atria, lat, ant, z, rho_fat_edge, z_base: float, out: np.ndarray) -> None:
    """Fill `out` (n,) uint8 codes (pre-filled with NONE) for points above the base (z < z_base).
    rho_fat_edge (n,): outer radius of the heart at the base at each point's angle (AV fat)."""
    rho2 = lat * lat + ant * ant
    out[(rho2 < rho_fat_edge ** 2) & (z > z_base - AV_FAT_MM)] = TISSUE["fat"]
    z_bottom = z_base - 0.5
    qla = _q(lat, ant, z, at.la_centre, at.la_axes, at.la_roof, z_bottom)
    qra = _q(lat, ant, z, at.ra_centre, at.ra_axes, at.ra_roof, z_bottom)
    sigma = (lat - at.sep_point[0]) * at.sep_dir[0] + (ant - at.sep_point[1]) * at.sep_dir[1]
    k_la = (1.0 + at.wall / min(at.la_axes)) ** 2
    k_ra = (1.0 + at.wall / min(at.ra_axes)) ** 2
    shell = ((qla < k_la) | (qra < k_ra)) & (z < z_base)
    out[shell] = TISSUE["atrial_wall"]
    half = 0.5 * at.wall
    out[(qla < 1) & (sigma < -half)] = TISSUE["la_blood"]
    out[(qra < 1) & (sigma > half)] = TISSUE["ra_blood"]
    _aorta(at, lat, ant, z, z_base, out)


def _aorta(at: Atria, lat, ant, z, z_base: float, out: np.ndarray) -> None:
    """Ascending aorta: a tube from the aortic valve (at the moving base) upward."""
    p0 = at.ao_start + np.array([0.0, 0.0, z_base])
    wl, wa, wz = lat - p0[0], ant - p0[1], z - p0[2]
    axial = wl * at.ao_dir[0] + wa * at.ao_dir[1] + wz * at.ao_dir[2]
    rad2 = wl * wl + wa * wa + wz * wz - axial * axial
    tube = (axial >= 0) & (axial <= AO_LENGTH_MM)
    out[tube & (rad2 < (at.ao_radius + AO_WALL_MM) ** 2)] = TISSUE["muscle"]
    out[tube & (rad2 < at.ao_radius ** 2)] = TISSUE["aorta_blood"]

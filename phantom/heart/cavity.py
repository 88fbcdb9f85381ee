"""Structures inside the ventricular cavities: papillary muscles, trabeculae, the RV moderator band.

They live in the myocardial (phi, s) coordinates of segments.py and are attached to the moving
endocardium, so they move with the wall. A reader contours them into the blood pool, and so does
measure.py (they carry their own tissue codes "papillary" / "rv_trabecula"), so LV / RV volumes are
those of the cavity including them. Sizes are physiology-bound (papillary radius scales with the mid
wall thickness, so HCM papillary muscles are hypertrophied); the trabecular pattern is drawn from a
generator seeded by the study index only (class-independent).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from cmr_search.phantom.cases.latent import TISSUE, Latent
from cmr_search.phantom.heart.segments import NPHI, NS, PHI_DEG, S, angle_diff_deg, smoothstep
from cmr_search.phantom.randomness import seeded_rng

PAP_DEG = (305.0, 172.0)      # anterolateral and posteromedial papillary muscles (segments.py angles)
PAP_S, PAP_HALF = 0.55, 0.28  # papillary muscle centre level and half length (fractions of s)
MB_DEG, MB_S = 105.0, 0.62    # moderator band: angle (in the 4CH plane) and level
MB_HALF_MM = (1.8, 2.0)       # moderator band half width (circumferential), half height (z), mm


@dataclass(frozen=True)
class Cavity:
    """Static description of one heart's intracavitary structures."""
    pap_r: float                 # papillary muscle belly radius at ED, mm
    lv_trab: np.ndarray          # (NPHI·NS,) LV trabecular fringe depth into the cavity, mm
    rv_trab: np.ndarray          # (NPHI·NS,) RV trabecular depth from the free wall, mm
    lv_trab_frac: float = 0.0    # > 0: LV fringe depth and papillary belly radius at most this fraction of
                                 # the local cavity radius (a cavity labelled as such keeps a blood core)

    @classmethod
    def build(cls, latent: Latent) -> "Cavity":
        rng = seeded_rng(int(latent.study_index), 5153)
        w_mid = float(np.mean(latent.wall_ed_mm[6:12]))
        pap_r = float(np.clip(0.55 * w_mid, 3.8, 8.5))
        lv_cover = 0.05 + 0.30 * smoothstep(S, 0.45, 0.9) - 0.05 * smoothstep(S, 0.15, 0.0)
        lv = _pattern(rng, (2.0, 1.2), lv_cover, (1.2, 2.8))
        rv_cover = 0.30 * smoothstep(S, 0.05, 0.25)
        rv = _pattern(rng, (3.0, 1.5), rv_cover, (2.0, 4.0))
        return cls(pap_r, lv.ravel().astype(np.float32), rv.ravel().astype(np.float32))


def heavy_lv_fringe(rng, cover: tuple[float, float], depth_mm: tuple[float, float]) -> np.ndarray:
    """(NPHI·NS,) a dense, spotty LV trabecular fringe (a non-compacted or dilated heart's): covering
    cover[0] of the base rising to cover[1] at the apex, 2-7 mm deep; for domain-randomized training only."""
    c = cover[0] + (cover[1] - cover[0]) * smoothstep(S, 0.2, 0.9)
    return _pattern(rng, (1.0, 0.8), c, depth_mm).ravel().astype(np.float32)


def _pattern(rng, sigma, cover, depth_mm) -> np.ndarray:
    """(NPHI, NS) depth (mm) of a smooth random pattern covering fraction cover(s) of each level."""
    noise = ndimage.gaussian_filter(rng.standard_normal((NPHI, NS)), sigma, mode=("wrap", "nearest"))
    noise /= max(float(noise.std()), 1e-9)
    thr = special.ndtri(1.0 - np.clip(cover, 1e-4, 0.99))[None, :]           # (1, NS)
    depth = rng.uniform(*depth_mm, size=(NPHI, NS))
    return np.where(noise > thr, depth, 0.0)


def lv_muscle(cav: Cavity, tab: np.ndarray, g, i_s, s, f: float, lat, ant, rho, iphi, b1):
    """(n,) bool: LV cavity points (all given points are cavity) inside a papillary muscle or the
    trabecular fringe. tab (NPHI·NS, k) state table (column 0 = radius/g), g = profile_g(s); i_s, s
    scalars or (n,) arrays; lat, ant, rho, iphi, b1 (n,)."""
    depth = cav.lv_trab[iphi * NS + i_s]
    if cav.lv_trab_frac > 0:             # a systolic cavity keeps a blood core: compacted trabeculae are wall
        depth = np.minimum(depth, cav.lv_trab_frac * b1)
    hit = (b1 - rho) < depth
    prof = np.sqrt(np.clip(1.0 - ((np.asarray(s, np.float32) - PAP_S) / PAP_HALF) ** 2, 0.0, None))
    rp = np.float32(cav.pap_r * (1.0 + 0.25 * f)) * prof
    if cav.lv_trab_frac > 0:             # ... and papillary bellies too (obliterated cavity: all of it is wall)
        rp = np.minimum(rp, cav.lv_trab_frac * b1)
    if np.all(rp <= 0):
        return hit
    for deg in PAP_DEG:
        k = int(deg / 360.0 * NPHI) % NPHI
        rc = tab[k * NS + i_s, 0] * g - 0.5 * rp
        a = np.deg2rad(deg)
        cx, cy = -np.sin(a) * rc, np.cos(a) * rc
        hit |= (lat - cx) ** 2 + (ant - cy) ** 2 < rp * rp
    return hit


def rv_muscle(cav: Cavity, i_s, z_rel, rho, iphi, b2, hc):
    """(n,) bool: RV cavity points (all given points are cavity) in a trabecula or the moderator
    band. z_rel: depth below the base (mm, scalar or (n,)) relative to the band's level; b2 (n,)
    septal (LV epicardial) radius, hc (n,) crescent depth."""
    outer = b2 + hc
    hit = (outer - rho) < np.minimum(cav.rv_trab[iphi * NS + i_s], 0.4 * hc)
    u = (rho - b2) / np.maximum(hc, 1.0)
    dz = z_rel + 5.0 * (u - 0.5)
    arc = np.abs(angle_diff_deg(PHI_DEG[iphi], MB_DEG)) * (np.pi / 180.0) * rho
    return hit | ((np.abs(dz) < MB_HALF_MM[1]) & (arc < MB_HALF_MM[0]))


def paint(cav: Cavity, st: dict, codes, layer, pts, level, bounds) -> None:
    """Paint papillary muscles, trabeculae and the moderator band into the cavities, in place.
    codes, layer (n,): tissue codes and radial layer (0 LV cavity, 2 RV cavity) per point;
    pts = (lat, ant, rho, iphi) (n,) each; level = (i_s, s, g, z_rel), scalars or (n,) each
    (z_rel: mm below the moderator band level); bounds = (b1, b2, hc) (n,) each: endocardial
    and LV epicardial radius, RV crescent depth. st: the heart state (tab, f)."""
    lat, ant, rho, iphi = pts
    b1, b2, hc = bounds
    pick = lambda v, i: v if np.ndim(v) == 0 else v[i]                    # noqa: E731
    lv = np.flatnonzero(layer == 0)
    if lv.size:
        i_s, s, g, _ = (pick(v, lv) for v in level)
        hit = lv_muscle(cav, st["tab"], g, i_s, s, st["f"], lat[lv], ant[lv], rho[lv], iphi[lv],
                        b1[lv])
        codes[lv[hit]] = TISSUE["papillary"]
    rv = np.flatnonzero(layer == 2)
    if rv.size:
        i_s, _, _, z_rel = (pick(v, rv) for v in level)
        hit = rv_muscle(cav, i_s, z_rel, rho[rv], iphi[rv], b2[rv], hc[rv])
        codes[rv[hit]] = TISSUE["rv_trabecula"]


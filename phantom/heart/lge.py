"""Late-enhancement (fibrosis fraction) field of the LV in myocardial coordinates (phantom.md §1.2).

The field is a table over (phi, s, depth): phi and s as in segments.py (row NS is the apical cap,
segment 17) and depth 0 = endocardium .. 1 = epicardium. Because it lives in myocardial coordinates it
moves with the wall, and every plane (SAX, 2CH, 3CH, 4CH) cutting a scar shows it.
Patterns: subendo / transmural / midwall / subepi (a band over the patch's segments and depth range),
diffuse (all listed segments, base > apex gradient), rv_insertion (mid-wall blobs at the RV insertion
points), dot (one tiny insertion-point focus). Patchiness breaks bands into blobs with a smooth random
field seeded from the study index, so the same latent always gives the same scar.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from cmr_search.phantom.cases.latent import Latent, LGEPatch
from cmr_search.phantom.heart.segments import (LEVEL_S, NPHI, NS, PHI_DEG, RV_INSERTION_DEG, S, angle_diff_deg,
                                               segment_level, segment_table, smoothstep)
from cmr_search.phantom.randomness import seeded_rng

ND = 16                                   # depth cells
DEPTH = (np.arange(ND) + 0.5) / ND        # (ND,) cell centres
S_CAP = np.append(S, 1.0 + 0.5 / NS)      # (NS+1,) s of each row; the last row is the cap
BAND_PATTERNS = ("subendo", "transmural", "midwall", "subepi", "diffuse")


def _membership(segments) -> np.ndarray:
    """(NPHI, NS+1) soft 0..1 membership of the union of AHA segments (soft edges ~ 4°)."""
    seg = segment_table()                                          # (NPHI, NS)
    hard = np.zeros((NPHI, NS + 1))
    hard[:, :NS] = np.isin(seg, [s for s in segments if s <= 16])
    hard[:, NS] = 1.0 if 17 in segments else 0.0
    soft = ndimage.gaussian_filter(hard[:, :NS], (2.0, 0.8), mode=("wrap", "nearest"))
    hard[:, :NS] = np.clip(1.6 * soft - 0.3, 0.0, 1.0)
    return hard


def _depth_window(depth: tuple[float, float]) -> np.ndarray:
    """(ND,) 0..1 window over the transmural range, soft edges (0.04 of the wall)."""
    lo, hi = depth
    rise = smoothstep(DEPTH, lo - 0.04, lo + 0.04) if lo > 0.02 else np.ones(ND)
    fall = 1.0 - smoothstep(DEPTH, hi - 0.04, hi + 0.04) if hi < 0.98 else np.ones(ND)
    return rise * fall


def _patchy(rng: np.random.Generator, patchiness: float) -> np.ndarray:
    """(NPHI, NS+1, ND) 0..1 mask keeping about (1 - 0.65·patchiness) of the volume, in blobs."""
    if patchiness <= 0:
        return np.ones((NPHI, NS + 1, ND))
    noise = ndimage.gaussian_filter(rng.standard_normal((NPHI, NS + 1, ND)), (5.0, 3.0, 2.0),
                                    mode=("wrap", "nearest", "nearest"))
    noise /= noise.std() + 1e-12
    thr = np.quantile(noise, 0.65 * min(patchiness, 1.0))
    return smoothstep(noise, thr - 0.25, thr + 0.25)


def _band(p: LGEPatch) -> np.ndarray:
    """(NPHI, NS+1, ND) smooth band of a band-type patch (strength 1)."""
    seg = tuple(range(1, 18)) if p.pattern == "diffuse" and not p.segments else p.segments
    m = _membership(seg)
    if p.pattern == "diffuse":
        m = m * (1.0 - 0.45 * np.clip(S_CAP, 0, 1))[None, :]     # base > apex gradient
    return m[:, :, None] * _depth_window(p.depth)[None, None, :]


def _blob(phi0: float, s0: float, radius_mm: float, depth, r_mm: float, len_mm: float):
    """(NPHI, NS+1, ND) solid round blob centred at (phi0, s0), radius in mm on the wall."""
    dx = np.deg2rad(angle_diff_deg(PHI_DEG, phi0)) * r_mm          # (NPHI,) arc length
    dy = (np.minimum(S_CAP, 1.0) - s0) * len_mm                   # (NS+1,)
    dist = np.hypot(dx[:, None], dy[None, :]) / radius_mm
    lo, hi = depth
    dz = np.abs(DEPTH - 0.5 * (lo + hi)) / max(0.5 * (hi - lo), 0.05)
    return (1.0 - smoothstep(dist, 0.7, 1.0))[:, :, None] * (1.0 - smoothstep(dz, 0.7, 1.0))[None, None]


def _insertion_sites(segments) -> list[tuple[float, float]]:
    """(phi, s) of the RV insertion points next to the given segments (at their level)."""
    sites = []
    for seg in segments:
        lvl = min(segment_level(seg), 2)
        k = (seg - 1) % 6 if seg <= 12 else seg - 13
        anterior = k in (0, 1) if seg <= 12 else k == 0 or k == 1 and seg <= 14
        phi = RV_INSERTION_DEG[0] + 5 if anterior else RV_INSERTION_DEG[1] - 5
        if (phi, LEVEL_S[lvl]) not in sites:
            sites.append((phi, LEVEL_S[lvl]))
    return sites


def _insertion(p: LGEPatch, rng, r_mm: float, len_mm: float, dot: bool) -> np.ndarray:
    out = np.zeros((NPHI, NS + 1, ND))
    sites = _insertion_sites(p.segments or (3,))
    for phi, s0 in sites[:1] if dot else sites:
        n = 1 if dot else int(rng.integers(1, 3))
        for _ in range(n):
            rad = 2.5 if dot else float(rng.uniform(3.0, 10.0))
            jphi = float(rng.normal(0, 6)) if not dot else 0.0
            js = float(rng.normal(0, 0.05)) if not dot else 0.0
            out = np.maximum(out, _blob(phi + jphi, s0 + js, rad, p.depth, r_mm, len_mm))
    return out


def lge_table(latent: Latent, r_mm: float, len_mm: float) -> np.ndarray:
    """(NPHI, NS+1, ND) float32 fibrosis fraction of the LV wall. r_mm: mid-wall radius and
    len_mm: cavity length (to size blobs in mm). Deterministic in latent.study_index."""
    out = np.zeros((NPHI, NS + 1, ND))
    for i, p in enumerate(latent.lge):
        rng = seeded_rng(int(latent.study_index), 7919, i)
        if p.pattern in BAND_PATTERNS:
            field = _band(p)
        elif p.pattern in ("rv_insertion", "dot"):
            field = _insertion(p, rng, r_mm, len_mm, p.pattern == "dot")
        else:
            raise ValueError(f"unknown LGE pattern {p.pattern!r}; use one of "
                             f"{BAND_PATTERNS + ('rv_insertion', 'dot')}")
        out = np.maximum(out, p.strength * field * _patchy(rng, p.patchiness))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def side_lge(latent: Latent) -> tuple[float, float]:
    """(rv_free_wall, atrial_wall) fibrosis fraction from patches flagged rv / atria."""
    rv = max([p.strength for p in latent.lge if p.rv] + [0.0])
    atria = max([p.strength for p in latent.lge if p.atria] + [0.0])
    return float(rv), float(atria)

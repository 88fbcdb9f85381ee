"""Motion model of the beating heart (phantom.md §1.3): volume-time curve and the contraction solves.

The cycle is driven by one ejection curve f(t) in [0, 1] (0 at end-diastole, 1 at end-systole) over
t in [0, 1) fraction of the RR interval: ejection to ES at 0.30-0.40 RR (later at higher heart rate),
rapid filling back to 80 % of the stroke volume by 0.6 RR, diastasis, and the atrial kick in the
last 15 % of RR. It is piecewise cosine between knots: smooth (C1), periodic and monotone per phase.

Given the ED cavity radius table R0 (NPHI, NS), a contractility table c and the cavity length L(t),
the endocardial radius at time t is R0·max(RMIN, 1 - k·c·f(t)); `solve_contraction` finds the global
scale k so that the cavity volume at ES equals the target ESV. Myocardium is incompressible per
angle and level (area conserved), so thickening follows; akinetic cells (c = 0) keep their radius.
"""
from __future__ import annotations

import numpy as np

RMIN = 0.12                       # smallest endocardial radius factor (cavity never vanishes)
RAPID_FILL_END = 0.60             # RR fraction by which 80 % of the stroke volume has refilled
ATRIAL_KICK_START = 0.85          # RR fraction where the atrial contraction starts
DIASTASIS_F = (0.20, 0.15)        # ejection fraction left at the start / end of diastasis


def es_fraction(hr_bpm: float) -> float:
    """Time of end-systole as a fraction of RR: 0.30 at 50 bpm .. 0.40 at 100 bpm and above."""
    return float(0.30 + 0.10 * np.clip((hr_bpm - 50.0) / 50.0, 0.0, 1.0))


def _knots(es: float) -> tuple[np.ndarray, np.ndarray]:
    t_rf = max(RAPID_FILL_END, es + 0.18)
    t_at = max(ATRIAL_KICK_START, t_rf + 0.1)
    return (np.array([0.0, es, t_rf, t_at, 1.0]),
            np.array([0.0, 1.0, DIASTASIS_F[0], DIASTASIS_F[1], 0.0]))


def ejection_curve(t, es: float):
    """f(t) in [0, 1]: fraction of the stroke volume ejected at cycle time t (any real, periodic)."""
    t = np.mod(np.asarray(t, dtype=np.float64), 1.0)
    tk, fk = _knots(es)
    i = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, len(tk) - 2)
    u = (t - tk[i]) / (tk[i + 1] - tk[i])
    w = 0.5 - 0.5 * np.cos(np.pi * u)
    out = fk[i] + (fk[i + 1] - fk[i]) * w
    return float(out) if out.ndim == 0 else out


def contracted(r0: np.ndarray, c: np.ndarray, k: float, f: float) -> np.ndarray:
    """(NPHI, NS) endocardial radius factor table at ejection fraction f of the cycle."""
    return r0 * np.maximum(RMIN, 1.0 - k * c * f)


def cavity_volume(r: np.ndarray, g2: np.ndarray, length: float, dphi: float) -> float:
    """Volume (mm³) of the cavity whose radius is r(phi, s)·g(s): L·Σ ½ r² ∫g² ds dphi.
    g2 (NS,) holds the exact integral of g² over each s cell."""
    return float(length * 0.5 * dphi * np.sum(r * r * g2[None, :]))


def solve_contraction(r0: np.ndarray, c: np.ndarray, g2: np.ndarray, length_es: float,
                      dphi: float, esv: float) -> float:
    """Global contraction scale k such that the ES cavity volume equals esv (bisection; the
    volume falls monotonically with k wherever contractility is positive)."""
    lo, hi = -2.0, 1.0 / RMIN
    vol = lambda k: cavity_volume(contracted(r0, c, k, 1.0), g2, length_es, dphi)  # noqa: E731
    if vol(hi) > esv:          # even full contraction leaves a larger cavity: contract maximally
        return hi
    if vol(lo) < esv:
        return lo
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if vol(mid) > esv else (lo, mid)
    return 0.5 * (lo + hi)


def solve_crescent(r_in: np.ndarray, b: np.ndarray, e: np.ndarray, cell_area: np.ndarray,
                   length: float, volume: float) -> float:
    """Scale H >= 0 of a crescent of radial depth h = H·b + e outside radius r_in (all (NPHI, NS)),
    so that L·Σ (r_in·h + h²/2)·cell_area = volume. Quadratic in H; solved in closed form."""
    qa = length * np.sum(0.5 * b * b * cell_area)
    qb = length * np.sum((r_in + e) * b * cell_area)
    qc = length * np.sum((r_in * e + 0.5 * e * e) * cell_area) - volume
    if qa <= 0:
        raise ValueError("RV crescent has no extent; check the RV angle/length profile")
    disc = max(qb * qb - 4.0 * qa * qc, 0.0)
    return max(0.0, (-qb + np.sqrt(disc)) / (2.0 * qa))

"""AHA 17-segment geometry on the LV's (angle, level) table, and smooth per-segment maps.

The heart model (anatomy.py) keeps every regional quantity in a table over myocardial coordinates:
  phi  circumferential angle from the anterior wall toward the septum (0 anterior, 90° septum,
       180° inferior, 270° lateral), i.e. the direction cos(phi)·e_ant - sin(phi)·e_lat;
  s    normalised longitudinal position, 0 at the LV base (mitral plane) .. 1 at the cavity tip.
The apical cap beyond the cavity tip is segment 17. Tables are (NPHI, NS) float arrays indexed by
the nearest cell; they are smoothed so that neighbouring segments blend without steps.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

NPHI = 180                    # angular cells (2° each)
NS = 64                       # longitudinal cells over the cavity length
PHI_DEG = (np.arange(NPHI) + 0.5) * 360.0 / NPHI      # (NPHI,) cell centres, degrees
S = (np.arange(NS) + 0.5) / NS                         # (NS,) cell centres
LEVEL_EDGES = (0.35, 0.68)    # s where basal -> mid and mid -> apical
LEVEL_S = (0.175, 0.515, 0.84, 1.0)   # s of the basal, mid, apical ring centres and the apex
RV_INSERTION_DEG = (30.0, 150.0)      # anterior / inferior RV insertion points


def segment_level(seg: int) -> int:
    """0 basal, 1 mid, 2 apical, 3 apex (segment 17)."""
    return 0 if seg <= 6 else 1 if seg <= 12 else 2 if seg <= 16 else 3


def segment_centre_deg(seg: int) -> float:
    """Angle of a segment's centre (apex: 0)."""
    if seg <= 12:
        return ((seg - 1) % 6) * 60.0
    return (seg - 13) * 90.0 if seg <= 16 else 0.0


def segment_table() -> np.ndarray:
    """(NPHI, NS) int AHA segment (1..16) of every wall cell (segment 17 is the cap, not here)."""
    level = np.digitize(S, LEVEL_EDGES)                            # (NS,) 0 / 1 / 2
    six = (((PHI_DEG + 30.0) % 360.0) // 60.0).astype(int)         # (NPHI,) 0..5
    four = (((PHI_DEG + 45.0) % 360.0) // 90.0).astype(int)        # (NPHI,) 0..3
    seg = np.where(level[None, :] == 0, 1 + six[:, None],
                   np.where(level[None, :] == 1, 7 + six[:, None], 13 + four[:, None]))
    return seg.astype(np.int16)


def _periodic(vals: np.ndarray) -> np.ndarray:
    """(NPHI,) periodic linear interpolation of values given at equally spaced ring centres."""
    n = len(vals)
    xp = np.arange(n + 1) * 360.0 / n
    return np.interp(PHI_DEG, xp, np.append(vals, vals[0]))


def _level_weights() -> np.ndarray:
    """(NS, 4) linear interpolation weights of the basal, mid, apical rings and the apex."""
    eye = np.eye(4)
    return np.stack([np.interp(S, LEVEL_S, eye[j]) for j in range(4)], axis=1)


def smooth_map(values, sigma_deg: float = 8.0, sigma_s: float = 0.03) -> np.ndarray:
    """(NPHI, NS) float64 table of a per-segment quantity (17 values, index seg-1): linear between
    ring centres and levels, then Gaussian-smoothed (wrapping in angle) so there are no steps."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (17,):
        raise ValueError(f"expected 17 per-segment values (AHA 1..17), got shape {v.shape}")
    rings = np.stack([_periodic(v[0:6]), _periodic(v[6:12]), _periodic(v[12:16]),
                      np.full(NPHI, v[16])])                       # (4, NPHI)
    table = (_level_weights() @ rings).T                           # (NPHI, NS)
    sig = (sigma_deg * NPHI / 360.0, sigma_s * NS)
    return ndimage.gaussian_filter(table, sig, mode=("wrap", "nearest"))


def smoothstep(x, lo: float, hi: float):
    """0 below lo, 1 above hi, C1-smooth in between (works on arrays)."""
    u = np.clip((np.asarray(x, dtype=np.float64) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def angle_diff_deg(a, b):
    """Signed smallest difference a - b in degrees, in (-180, 180]."""
    return (np.asarray(a) - b + 180.0) % 360.0 - 180.0

"""Find the left-ventricular blood pool in a cine short-axis stack (used by assemble.locate_heart).

The temporal variance of a cine marks the whole moving region (LV, RV, atria, liver), whose centroid can
lie 30-60 mm from the LV on real data. Here the LV cavity is found explicitly: on each slice, bright
components of the time-maximum and first (ED) frames at three Otsu-derived thresholds become candidates,
each scored by roundness x area change over the cycle x brightness x a dark (myocardial) ring around it x
closeness to the variance centre. A candidate gains support from candidates near it on neighbouring
slices (the LV is a tube through the stack), the best per slice is kept, and the LV axis is taken as
perpendicular to the slices through the score-weighted robust centre of those picks.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

LV_AREA_MM2 = (80.0, 6000.0)   # candidate cavity areas considered
AREA_CAP_MM2 = 2500.0          # area change counts up to this cavity size (merged basal blobs do not win)
SEARCH_MM = 70.0               # candidates within this distance of the variance centre
PRIOR_MM = 60.0                # ... down-weighted as exp(-(d / PRIOR_MM)^2)
OPEN_MM = 2.5                  # opening radius that cuts thin bridges between cavities
RING_MM = 5.0                  # width of the ring that should be dark myocardium
TUBE_MM = 12.0                 # a neighbouring slice's candidate this close supports a candidate
CONSENSUS_MM = 10.0            # picks this close to the weighted median form the final centre


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, 128)
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * mids)
    m0, m1 = s0 / np.maximum(w0, 1), (s0[-1] - s0) / np.maximum(w1, 1)
    return float(mids[np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def _roundness(rows: np.ndarray, cols: np.ndarray) -> float:
    """1 for a filled disk; lower for ellipses, crescents and ragged shapes (moment-based)."""
    lam = np.linalg.eigvalsh(np.cov(np.stack([rows, cols]).astype(float)) + np.eye(2) / 12)
    fill = len(rows) / (4 * np.pi * np.sqrt(lam[0] * lam[1]))
    return float(np.sqrt(lam[0] / lam[1]) * min(1.0, fill))


def _disk(radius_px: float) -> np.ndarray:
    return ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), max(1, int(round(radius_px))))


def _level_candidates(smooth: np.ndarray, ref: np.ndarray, disk: np.ndarray, thr: float,
                      spacing: tuple[float, float], prior: tuple[float, float]) -> list[tuple]:
    """Scored (score, row, col) candidates: components of `ref > thr` inside `disk`."""
    px = float(np.sqrt(spacing[0] * spacing[1]))
    fg = ndimage.binary_opening((ref > thr) & disk, _disk(OPEN_MM / px))
    labels, n = ndimage.label(fg)
    bright_t = smooth > thr                                            # (T, H, W)
    ring_st = _disk(RING_MM / px)
    pad = ring_st.shape[0] // 2 + 1
    out = []
    for lab, box in enumerate(ndimage.find_objects(labels), start=1):
        # each component on its bounding box plus the ring's reach (the same result, less work)
        win = tuple(slice(max(0, b.start - pad), b.stop + pad) for b in box)
        mask = ndimage.binary_fill_holes(labels[win] == lab)           # papillary muscles count as cavity
        area = float(mask.sum()) * spacing[0] * spacing[1]
        if not LV_AREA_MM2[0] <= area <= LV_AREA_MM2[1]:
            continue
        rows, cols = np.nonzero(mask)
        rows, cols = rows + win[0].start, cols + win[1].start
        r0, c0 = float(rows.mean()), float(cols.mean())
        frac = bright_t[(slice(None), *win)][:, mask].mean(axis=1)     # bright fraction per phase
        change = min(area, AREA_CAP_MM2) * (1 - frac.min() / max(frac.max(), 1e-6)) / 1000
        ring = ndimage.binary_dilation(mask, ring_st) & ~mask
        dark = 1 - fg[win][ring].mean() if ring.any() else 0.0
        d = np.hypot((r0 - prior[0]) * spacing[0], (c0 - prior[1]) * spacing[1])
        score = _roundness(rows, cols) ** 2 * change * ref[win][mask].mean() * (0.2 + dark) \
            * np.exp(-(d / PRIOR_MM) ** 2)
        out.append((float(score), r0, c0))
    return out


def slice_candidates(frames: np.ndarray, spacing: tuple[float, float],
                     prior: tuple[float, float]) -> list[tuple]:
    """Candidates (score, row, col) for the LV cavity on one slice; frames (T, H, W) scaled ~0..1.
    Works on the box around the search disk (plus the opening and ring reach), smoothed with the
    kernel's reach as margin: the same result as on the whole image, a fraction of the cost."""
    sigma = (1.0 / spacing[0], 1.0 / spacing[1])
    reach = SEARCH_MM + RING_MM + OPEN_MM
    lo = [max(0, int(np.floor(prior[k] - reach / spacing[k])) - 2) for k in (0, 1)]
    hi = [min(frames.shape[k + 1], int(np.ceil(prior[k] + reach / spacing[k])) + 3) for k in (0, 1)]
    if hi[0] <= lo[0] or hi[1] <= lo[1]:
        return []
    m = [int(4 * sigma[k] + 0.5) + 1 for k in (0, 1)]                # gaussian_filter's kernel reach
    a = [max(0, lo[k] - m[k]) for k in (0, 1)]
    b = [min(frames.shape[k + 1], hi[k] + m[k]) for k in (0, 1)]
    padded = ndimage.gaussian_filter(frames[:, a[0]:b[0], a[1]:b[1]], (0, *sigma))
    box = padded[:, lo[0] - a[0]:hi[0] - a[0], lo[1] - a[1]:hi[1] - a[1]]
    found = _box_candidates(box, spacing, (prior[0] - lo[0], prior[1] - lo[1]))
    return [(score, r + lo[0], c + lo[1]) for score, r, c in found]


def _box_candidates(smooth: np.ndarray, spacing: tuple[float, float],
                    prior: tuple[float, float]) -> list[tuple]:
    rr, cc = np.ogrid[:smooth.shape[1], :smooth.shape[2]]
    disk = np.hypot((rr - prior[0]) * spacing[0], (cc - prior[1]) * spacing[1]) <= SEARCH_MM
    out = []
    for ref in (smooth.max(axis=0), smooth[0]):                        # time-maximum and ED
        if not disk.any():
            break
        t1 = _otsu(ref[disk])
        upper = ref[disk & (ref > t1)]
        t2 = _otsu(upper) if upper.size > 1 else t1
        for thr in sorted({t1, (t1 + t2) / 2, t2}):
            out += _level_candidates(smooth, ref, disk, thr, spacing, prior)
    return out


def _tube_picks(cands: list[list[tuple]], spacing: tuple[float, float]) -> list[tuple | None]:
    """Best (row, col, total) per slice, total = own score + capped support from nearby slices."""
    picks = []
    for s, own in enumerate(cands):
        best = None
        for score, r, c in own:
            total = score
            for t in (s - 2, s - 1, s + 1, s + 2):
                if not 0 <= t < len(cands):
                    continue
                reach = TUBE_MM * (1 + (abs(t - s) > 1))
                near = [x[0] for x in cands[t] if np.hypot((x[1] - r) * spacing[0], (x[2] - c) * spacing[1]) <= reach]
                total += 0.5 * min(score, max(near, default=0.0))
            if best is None or total > best[2]:
                best = (r, c, total)
        picks.append(best)
    return picks


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, cw[-1] / 2)])


def find_lv(stack: np.ndarray, spacing: tuple[float, float],
            prior: tuple[float, float]) -> tuple[float, float] | None:
    """LV axis (row, col) in a cine stack (S, T, H, W) scaled ~0..1 whose slices share one pixel grid;
    None when no slice has a candidate. `prior`: the variance centre (row, col). Callers pass only the
    slices that matter (assemble: the middle of the moving slices), which is most of the cost saved."""
    picks = _tube_picks([slice_candidates(f, spacing, prior) for f in stack], spacing)
    got = [p for p in picks if p is not None and p[2] > 0]
    if not got:
        return None
    pts, w = np.array([p[:2] for p in got]), np.array([p[2] for p in got])
    w = np.minimum(w, np.median(w))             # no one slice outvotes the stack (an apex capped by
                                                # bright effusion scores far above the true cavities)
    med = np.array([_weighted_median(pts[:, 0], w), _weighted_median(pts[:, 1], w)])
    near = np.hypot((pts[:, 0] - med[0]) * spacing[0], (pts[:, 1] - med[1]) * spacing[1]) <= CONSENSUS_MM
    if not near.any() or w[near].sum() <= 0:    # the picks disagree everywhere: keep their median
        return float(med[0]), float(med[1])
    centre = (pts[near] * w[near, None]).sum(axis=0) / w[near].sum()
    return float(centre[0]), float(centre[1])

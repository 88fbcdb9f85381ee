"""Keep what can be a heart in the predicted labels of one stack (ACDC labels: 1 RV cavity, 2 LV
myocardium, 3 LV cavity).

The images of a stack (slices and phases of one study) share one LV long axis, so the LV is chosen in
3-D, not image by image: a first pass takes the largest LV blob (cavity + myocardium) of each image;
their area-weighted median centre is the stack's LV axis (large mid-ventricular blobs dominate, so a
stray blob on an apical or basal image cannot move it). A second pass keeps, on every image, the LV blob
nearest that axis, or none when the nearest lies more than AXIS_MM from it (a bright stomach or vessel
on a slice beyond the apex); its cavity's holes are filled and a gap in its myocardial ring (cavity
touching background) is closed with wall of the slice's own thickness (close_ring: ACDC's experts close
the ring on every slice; on the dev set this lifts myocardium Dice 0.740 -> 0.746). Then the RV: the largest RV component within RV_NEAR_MM of the kept LV.
Everything else (islands anywhere in the field of view) becomes background."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

RV_NEAR_MM = 10.0      # an RV component this close to the kept LV counts as the RV
AXIS_MM = 30.0         # an LV blob whose centre is further than this from the stack's axis is dropped


def _components(mask: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """labels, count, sizes (n,), centres (n, 2) of the connected components of a 2-D mask."""
    lab, n = ndimage.label(mask)
    if n == 0:
        return lab, 0, np.zeros(0), np.zeros((0, 2))
    flat = lab.ravel()                     # sizes and centres by bincount: ndimage.sum / center_of_mass give
    sizes = np.bincount(flat, minlength=n + 1)[1:].astype(float)      # the same numbers, 5x slower here
    rows, cols = np.divmod(np.arange(flat.size), lab.shape[1])
    centres = np.stack([np.bincount(flat, weights=rows, minlength=n + 1)[1:],
                        np.bincount(flat, weights=cols, minlength=n + 1)[1:]], 1) / sizes[:, None]
    return lab, n, sizes, centres


def stack_axis(labels: np.ndarray) -> np.ndarray | None:
    """(N, H, W) -> (row, col) area-weighted median centre of each image's largest LV blob; None if no LV."""
    centres, weights = [], []
    for img in labels:
        _, n, sizes, cms = _components(img >= 2)
        if n:
            k = int(np.argmax(sizes))
            centres.append(cms[k])
            weights.append(sizes[k])
    if not centres:
        return None
    c, w = np.asarray(centres), np.asarray(weights, float)
    return np.array([_weighted_median(c[:, i], w) for i in range(2)])


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, cum[-1] / 2)])


def close_ring(out: np.ndarray, spacing_mm: tuple[float, float]) -> None:
    """Where the LV cavity touches background, add myocardium of the slice's mean wall thickness (in
    place): experts' masks (ACDC) close the ring on every slice, the basal ones included, and a cavity
    open to the background is a gap in the predicted wall, not anatomy."""
    cav, myo = out == 3, out == 2
    if not cav.any() or not myo.any():
        return
    to_cavity = ndimage.distance_transform_edt(~cav, sampling=spacing_mm)
    rim = (to_cavity > 0) & (to_cavity <= 1.5 * max(spacing_mm))
    if not (rim & (out == 0)).any():
        return
    wall = float(np.clip(np.median(to_cavity[myo]) * 2.0, 3.0, 12.0))    # mean thickness ~ 2x median depth
    out[(to_cavity <= wall) & (out == 0)] = 2


def clean_slice(labels: np.ndarray, spacing_mm: tuple[float, float], axis: np.ndarray | None = None) -> np.ndarray:
    """(H, W) -> (H, W): one LV (the blob nearest `axis`, else the largest), the RV components near it."""
    out = np.zeros_like(labels)
    lab, n, sizes, cms = _components(labels >= 2)
    if n == 0:
        return out
    if axis is None:
        k = int(np.argmax(sizes))
    else:
        d = np.hypot((cms[:, 0] - axis[0]) * spacing_mm[0], (cms[:, 1] - axis[1]) * spacing_mm[1])
        k = int(np.argmin(d))
        if d[k] > AXIS_MM:
            return out
    lv = lab == k + 1
    out[lv] = labels[lv]
    out[ndimage.binary_fill_holes(out == 3) & lv] = 3          # ACDC: the cavity has no holes
    close_ring(out, spacing_mm)
    rv = labels == 1
    if rv.any():
        near = ndimage.distance_transform_edt(~lv, sampling=spacing_mm) <= RV_NEAR_MM
        rlab, _ = ndimage.label(rv)
        keep = np.unique(rlab[near & rv])
        keep = keep[keep > 0]
        if keep.size:
            rsizes = np.bincount(rlab.ravel())[keep]
            out[rlab == keep[int(np.argmax(rsizes))]] = 1
    return out


def clean_stack(labels: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """(N, H, W) images of one stack -> each cleaned around the stack's LV axis (module docstring)."""
    if not len(labels):
        return labels
    axis = stack_axis(labels) if len(labels) > 2 else None
    return np.stack([clean_slice(x, spacing_mm, axis) for x in labels])

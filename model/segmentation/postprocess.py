"""Keep what can be a heart in a predicted label image (ACDC labels: 1 RV cavity, 2 LV myocardium,
3 LV cavity): the largest LV blob (cavity + myocardium), the RV blob that touches or nears it. Stray
islands elsewhere in the field of view (stomach, aorta, a bright vessel) are set to background."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

RV_NEAR_MM = 10.0      # an RV component this close to the kept LV counts as the RV


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def clean_slice(labels: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """(H, W) -> (H, W): one LV (cavity + myocardium), the RV components near it."""
    out = np.zeros_like(labels)
    lv = _largest(labels >= 2)
    if not lv.any():
        return out
    out[lv] = labels[lv]
    rv = labels == 1
    if rv.any():
        near = ndimage.distance_transform_edt(~lv, sampling=spacing_mm) <= RV_NEAR_MM
        lab, n = ndimage.label(rv)
        keep = np.unique(lab[near & rv])
        keep = keep[keep > 0]
        if keep.size:
            sizes = ndimage.sum(rv, lab, keep)
            out[lab == keep[int(np.argmax(sizes))]] = 1
    return out


def clean_stack(labels: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """(N, H, W) -> each image cleaned on its own."""
    return np.stack([clean_slice(x, spacing_mm) for x in labels]) if len(labels) else labels

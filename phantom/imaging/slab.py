"""Partial-volume sampling of the analytic body + heart over one image slice (phantom.md §2.2).

A slice is sampled at `slab_samples` depths across its thickness, weighted by a Gaussian slice
profile (FWHM = thickness). Each pixel is first sampled at its centre (at every depth); pixels on a
tissue boundary (the code differs through the slab or from a 3x3 neighbour) are refined with
`oversample`² sub-pixel points per depth whose signals are averaged (adaptive partial volume).
The body is static, so frame 0 is sampled everywhere and later frames re-sample only the pixels near
the heart (heart tissue at frame 0 or end-systole, or any change between the two, dilated by
`margin_mm`): that is what makes cines affordable.

Label maps (`render(..., labels=True)` fills `tissue` and `lge_pct`, (F, H, W)) come from the same
samples: the tissue code and LGE fibrosis % of every pixel at its centre on the slab's mid plane, per
frame. With an odd number of slab samples the middle one lies on the mid plane. With an even number,
the pixels whose two middle samples differ in ACDC label (imaging.labels, scar included: a boundary of
LV cavity, myocardium, scar or RV cavity crosses the slab between them) are sampled again on the mid
plane, so every pixel's ACDC label is exact (short of a layer thinner than half the slab hidden
between the two samples); elsewhere the code is slab sample S // 2 (as pixel_tissue),
so a boundary between two codes of one label (fat | lung, RV wall | fat) may sit up to a quarter of the
slab off the mid plane. The re-samples cost a few per cent; the whole mid plane would cost a third more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from cmr_search.phantom.cases.latent import TISSUE
from cmr_search.phantom.heart.geometry import HeartFrame, Plane
from cmr_search.phantom.imaging.labels import seg_labels

HEART_CODES = np.array([TISSUE[n] for n in (
    "lv_blood", "rv_blood", "la_blood", "ra_blood", "aorta_blood", "lv_myo", "rv_myo",
    "atrial_wall", "pericardial_fluid", "thrombus", "papillary", "rv_trabecula", "pericardium",
    "valve")])
MARGIN_MM = 10.0     # how far moving heart tissue may travel beyond its ED/ES outline

# signal_fn(tissue uint8, lge float32, z_local float32, frame) -> float32, all of one shape
SignalFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def slab_profile(thickness: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) through-plane offsets (mm) spread over the thickness and their normalised Gaussian
    weights (FWHM = thickness)."""
    offs = ((np.arange(n) + 0.5) / n - 0.5) * thickness
    sigma = thickness / 2.3548
    w = np.exp(-0.5 * (offs / sigma) ** 2)
    return offs, (w / w.sum()).astype(np.float32)


def depth(frame: HeartFrame, pts: np.ndarray) -> np.ndarray:
    """(...,) float32 heart-local long-axis depth z of (..., 3) LPS points."""
    d = [pts[..., i] - np.float32(frame.origin[i]) for i in range(3)]
    return (d[0] * np.float32(frame.u[0]) + d[1] * np.float32(frame.u[1])
            + d[2] * np.float32(frame.u[2])).astype(np.float32)


@dataclass
class _Samples:
    """Anatomy sampled at n pixels of one frame (S slab depths, e refined pixels, q = k²)."""
    tis: np.ndarray     # (S, n) uint8 tissue at the pixel centres
    lge: np.ndarray     # (S, n) float32 fibrosis fraction
    z: np.ndarray       # (S, n) float32 heart-local depth of the centres
    edge: np.ndarray    # (e,) indices into n of the refined (boundary) pixels
    tis_f: np.ndarray   # (S, e, q) tissue at the sub-pixel points of the refined pixels
    lge_f: np.ndarray   # (S, e, q)


class SlabSampler:
    """One slice's sample points, anatomy shifted by a misregistration offset."""

    def __init__(self, heart, frame: HeartFrame, plane: Plane, oversample: int = 1,
                 slab_samples: int = 1, offset=(0.0, 0.0, 0.0), margin_mm: float = MARGIN_MM):
        self.heart, self.frame, self.plane = heart, frame, plane
        self.k, self.margin_mm = int(oversample), float(margin_mm)
        self.offset = np.asarray(offset, np.float64)                           # (3,) LPS mm
        offs, self.weights = slab_profile(plane.thickness, int(slab_samples))  # (S,), (S,)
        pts = np.stack([plane.pixel_points(1, float(o)) for o in offs]) - self.offset
        self.centres = pts.reshape(len(offs), -1, 3).astype(np.float32)        # (S, H·W, 3)
        self.z = depth(frame, self.centres)                                     # (S, H·W)
        sub = ((np.arange(self.k) + 0.5) / self.k - 0.5) * plane.pixel_spacing  # (k,)
        self.sub = (sub[None, :, None] * plane.row_dir
                    + sub[:, None, None] * plane.col_dir).reshape(-1, 3).astype(np.float32)
        self.tissue0: np.ndarray | None = None                                 # (S, H·W) frame 0
        self.mid: np.ndarray | None = None      # (H·W, 3) pixel centres on the mid plane (labels)
        self.tissue: np.ndarray | None = None   # (F, H, W) uint8 label map after render(labels=True)
        self.lge_pct: np.ndarray | None = None  # (F, H, W) uint8 LGE fibrosis %, same pixels; None
                                                # where there is none

    # --- sampling ---------------------------------------------------------------------------------
    def _sample(self, idx: np.ndarray, t: float, grid: np.ndarray) -> _Samples:
        """Sample pixels `idx` (n,) at time t; `grid` (S, H·W) is updated with their codes and
        used to find the boundary pixels that get sub-pixel refinement."""
        tis, lge = self.heart.sample(self.centres[:, idx], t)                  # (S, n)
        grid[:, idx] = tis
        edge = np.flatnonzero(self._edges(grid, idx)) if self.k > 1 else np.zeros(0, np.int64)
        q = self.sub.shape[0]
        if edge.size:
            fine = self.centres[:, idx[edge], None, :] + self.sub                  # (S, e, q, 3)
            tis_f, lge_f = self.heart.sample(fine, t)
        else:
            s = tis.shape[0]
            tis_f, lge_f = np.zeros((s, 0, q), np.uint8), np.zeros((s, 0, q), np.float32)
        return _Samples(tis, lge, self.z[:, idx], edge, tis_f, lge_f)

    def _edges(self, grid: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """(n,) bool: pixel idx lies on a tissue boundary (through the slab or in its 3x3)."""
        h, w = self.plane.rows, self.plane.cols
        r, c = np.divmod(idx, w)
        r0, r1 = max(r.min() - 1, 0), min(r.max() + 2, h)
        c0, c1 = max(c.min() - 1, 0), min(c.max() + 2, w)
        g = grid.reshape(-1, h, w)[:, r0:r1, c0:c1]                            # (S, hb, wb)
        vary = ndimage.maximum_filter(g.max(0), 3) != ndimage.minimum_filter(g.min(0), 3)
        return vary[r - r0, c - c0]

    def _mid_plane(self, s: _Samples, idx: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(n,) uint8 tissue and (n,) float32 LGE of pixels `idx` at their centres on the mid plane
        (module docstring: only pixels whose two middle samples differ in ACDC label are sampled
        again)."""
        n = s.tis.shape[0]
        if n % 2:
            return s.tis[n // 2], s.lge[n // 2]
        a, b = n // 2 - 1, n // 2
        tis, lge = s.tis[b].copy(), s.lge[b].copy()
        seg = [seg_labels(s.tis[i], s.lge[i], scar=True) for i in (a, b)]
        diff = np.flatnonzero(seg[0] != seg[1])
        if diff.size:
            tis[diff], lge[diff] = self.heart.sample(self.mid[idx[diff]], t)
        return tis, lge

    def _signal(self, s: _Samples, signal_fn: SignalFn, f: int) -> np.ndarray:
        """(n,) pixel signal: slab-weighted, refined pixels averaged over their sub-samples."""
        sig = signal_fn(s.tis, s.lge, s.z, f)                                   # (S, n)
        if s.edge.size:
            z_f = np.broadcast_to(s.z[:, s.edge, None], s.tis_f.shape)
            sig = sig.copy()
            sig[:, s.edge] = signal_fn(s.tis_f, s.lge_f, z_f, f).mean(-1)
        return self.weights @ sig

    # --- public -----------------------------------------------------------------------------------
    def pixel_tissue(self) -> np.ndarray:
        """(H, W) tissue code at frame 0, pixel centres, slab sample S // 2 (the mid plane when the
        sample count is odd): the masks of texture and banding. Label maps: self.tissue."""
        s = self.tissue0.shape[0] // 2
        return self.tissue0[s].reshape(self.plane.rows, self.plane.cols)

    def render(self, times, signal_fn: SignalFn, static_signal: bool = True,
               labels: bool = False) -> np.ndarray:
        """(F, H, W) float32 clean signal at heart-cycle fractions `times` (F,). With
        `static_signal` the body's signal is the same in every frame (only tissue moves). With
        `labels`, also fills self.tissue / self.lge_pct: the (F, H, W) mid-plane label maps."""
        times = [float(t) % 1.0 for t in times]
        h, w = self.plane.rows, self.plane.cols
        grid0 = np.zeros(self.z.shape, np.uint8)
        every = np.arange(h * w)
        s0 = self._sample(every, times[0], grid0)
        self.tissue0 = grid0
        out = np.empty((len(times), h * w), np.float32)
        out[0] = self._signal(s0, signal_fn, 0)
        tis = np.empty((len(times), h * w), np.uint8) if labels else None
        lge = np.empty((len(times), h * w), np.float32) if labels else None
        if labels:
            self.mid = (self.plane.pixel_points(1, 0.0) - self.offset).reshape(-1, 3).astype(np.float32)
            tis[:], lge[:] = self._mid_plane(s0, every, times[0])     # the body: static
        dyn = self._dynamic_pixels(grid0) if len(times) > 1 else np.zeros(0, np.int64)
        for f, t in enumerate(times[1:], start=1):
            out[f] = out[0] if static_signal else self._signal(s0, signal_fn, f)
            if dyn.size:
                s = self._sample(dyn, t, grid0.copy())
                out[f, dyn] = self._signal(s, signal_fn, f)
                if labels:
                    tis[f, dyn], lge[f, dyn] = self._mid_plane(s, dyn, t)
        if labels:
            self.tissue = tis.reshape(-1, h, w)
            self.lge_pct = np.rint(lge * 100).astype(np.uint8).reshape(-1, h, w) if lge.any() else None
        return out.reshape(len(times), h, w)

    def _dynamic_pixels(self, grid0: np.ndarray) -> np.ndarray:
        """(m,) flat indices of the pixels within margin_mm of where the slice may change: heart
        tissue at frame 0 or at end-systole, or any pixel whose code differs between the two
        (AV-groove fat moves with the descending base)."""
        es, _ = self.heart.sample(self.centres, float(self.heart.es_fraction) % 1.0)   # (S, H·W)
        seed = np.isin(grid0, HEART_CODES) | np.isin(es, HEART_CODES) | (es != grid0)
        heart = seed.any(0).reshape(self.plane.rows, self.plane.cols)
        if not heart.any():
            return np.zeros(0, np.int64)
        if not np.isfinite(self.margin_mm):
            return np.arange(heart.size)
        near = ndimage.distance_transform_edt(~heart) * self.plane.pixel_spacing <= self.margin_mm
        return np.flatnonzero(near)

    def beyond_edges(self, width: int, t: float, signal_fn: SignalFn):
        """(H, width) signal just beyond the left and the right image edge (one sample per pixel,
        mid-slab): what folds in when the phase field of view is too small."""
        p = self.plane
        wide = Plane(p.center, p.row_dir, p.col_dir, p.pixel_spacing, p.rows, p.cols + 2 * width,
                     p.thickness)
        cols = np.r_[0:width, p.cols + width:p.cols + 2 * width]
        pts = wide.pixel_points()[:, cols] - self.offset                        # (H, 2w, 3)
        tis, lge = self.heart.sample(pts, float(t) % 1.0)
        z = depth(self.frame, pts)
        sig = signal_fn(tis[None], lge[None], z[None], 0)[0]                    # (H, 2w)
        return sig[:, :width], sig[:, width:]

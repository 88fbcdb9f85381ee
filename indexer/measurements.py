"""Measurements of one study in `cmr prepare`: its cine SAX stack -> segmenter masks -> LV/RV volumes,
ejection fractions, LV mass, maximum wall thickness, their values indexed to body surface area and a
quality flag (model.segmentation.measure.measure_cine), plus a small mask for display.

    seg = load_segmenter()                       # None (and a warning, once) when no checkpoint exists
    fields, masks, frames = measure_study(seg, cine, height_cm=178, weight_kg=80)   # + mask_path: prepare.py

What is segmented, and why (2 CPU cores shared with other work; measured on the `demo` archive of
bench/ingest.py, 14 studies, seg-unet-small, one torch thread per worker): a whole-matrix segmentation of
every image of a stack (S x T = 8-13 slices x 25-30 phases, 208-256 px at 1.3-1.8 mm) costs ~115 ms an
image, 30-40 s a study, against ~1 CPU-s for everything else `cmr prepare` does with it. So:
  1. every slice is cropped to SEG_FIELD_MM square around the heart centre the assembler found (projected
     into each slice's plane) and resampled to the segmenter's own pixels (seg.cfg.pixel_mm: 96 x 96 at
     2 mm, room for a large RV; ~24 ms an image, ~15-20 ms with the weights in channels-last layout);
  2. ED and ES come from the mid slice's blood curve (blood_curve: the mean intensity in a disk around
     the LV centre, largest at ED, smallest at ES; no network), with NEAR_PHASES neighbours each side
     segmented and the largest / smallest LV cavity among them kept (NEAR_PHASES = 1 costs 4 more
     images a study; segmenting the mid slice at every phase would cost 25-30);
  3. every slice is segmented at ED and ES: 2 S images a study (16-26) instead of S x T (200-390), and
     the volumes use the same ED and ES on every slice, as a reader does. The masks are measured on the
     2 mm grid.
bench/ingest.py, same run, prepare without / with measurements: 12.2 s / 16.1 s (1.31x) and 19.8 s /
24.0 s (1.22x) with NEAR_PHASES = 0; 14.7 s / 24.5 s (1.67x) and 25.6 s / 37.9 s (1.48x) with
NEAR_PHASES = 1 (a loaded machine: the spread is the neighbours' load). Hence NEAR_PHASES = 0.

Stored per study (columns of studies.parquet, MEASURE_COLUMNS): the measurements, `seg_quality`,
`seg_flags`, `seg_fingerprint` (the segmenter's weights hash: a cache measured by another segmenter is
measured again) and `mask_path`: CACHE/masks/<key>.npz holding `masks` (2, CACHE_SIZE, CACHE_SIZE) uint8,
the mid slice's labels at ED and ES on the grid of the cached cine_sax view, and `frames`, the cached
cine_sax frames they belong to.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from cmr_search.indexer.assemble import CineStack, crop_plane
from cmr_search.model.errors import CheckpointError
from cmr_search.model.preprocess import CACHE_PHASES, CACHE_SIZE, CACHE_SPACING_MM
from cmr_search.model.segmentation import Segmenter
from cmr_search.model.segmentation.measure import measure_cine

SEG_FIELD_MM = 192.0        # square field around the heart centre that is segmented (LV, RV and margin)
BLOOD_DISK_MM = 30.0        # the blood curve: mean intensity of the mid slice in this disk around the LV centre
NEAR_PHASES = 0             # phases each side of the blood curve's ED and ES also segmented on the mid slice
SEG_BATCH = 16              # images per forward pass
DEFAULT_SLICE_MM = 10.0     # slice spacing when the stack has neither geometry nor a slice thickness
LV_CAVITY = 3               # LABELS: the LV cavity (model/segmentation/config.py)
ROUND = 1                   # decimals kept of each measurement

VALUE_COLUMNS = ("lvedv", "lvesv", "lvef", "lv_mass", "max_wall", "rvedv", "rvesv", "rvef", "bsa",
                 "lvedvi", "lvesvi", "lv_massi", "rvedvi", "rvesvi")
MEASURE_COLUMNS = (*VALUE_COLUMNS, "ed_phase", "es_phase", "seg_quality", "seg_flags", "seg_fingerprint",
                   "mask_path")


class MeasurementsSkipped(UserWarning):
    """No segmenter checkpoint: the cache is built without measurements (a later run adds them)."""


def load_segmenter(segmenter=None) -> Segmenter | None:
    """The segmenter to measure with: a Segmenter as given; a folder -> Segmenter.load(folder) (errors
    raise); None -> the default (Segmenter.load(): $CMR_SEG_CHECKPOINT, then the shipped checkpoint), and
    when there is none a MeasurementsSkipped warning and None; False -> None (measurements off)."""
    if segmenter is False:
        return None
    if isinstance(segmenter, Segmenter):
        return segmenter
    if segmenter is not None:
        return Segmenter.load(segmenter)
    try:
        return Segmenter.load()
    except CheckpointError as e:
        warnings.warn(f"measurements skipped (no LV/RV volumes, EF, mass in the cache): {e} A later "
                      "`cmr prepare` / `cmr index` with a segmenter adds them without rebuilding the cache.",
                      MeasurementsSkipped, stacklevel=3)
        return None


def body_size(height_m: float | None, weight_kg: float | None) -> tuple[float | None, float | None]:
    """DICOM PatientSize (m) and PatientWeight (kg) -> (height cm, weight kg); None where absent or not a
    human value (some sites write PatientSize in cm: 100-250 is taken as cm)."""
    h = None
    if height_m and 0.4 <= height_m <= 2.5:
        h = height_m * 100.0
    elif height_m and 100.0 <= height_m <= 250.0:
        h = float(height_m)
    w = float(weight_kg) if weight_kg and 2.0 <= weight_kg <= 400.0 else None
    return h, w


def _crops(seg: Segmenter, cine: CineStack, s: int, phases: list[int]) -> np.ndarray:
    """(len(phases), n, n) float32 of slice s around the heart centre, on the segmenter's pixel grid."""
    pixel = seg.cfg.pixel_mm
    n = int(round(SEG_FIELD_MM / pixel))
    plane = cine.planes[s] if cine.planes[s].real else cine.planes[cine.mid]
    return crop_plane(cine.stack[s, phases], plane, cine.centre, size=n, spacing_mm=pixel)


def _segment(seg: Segmenter, cine: CineStack, s: int, phases: list[int]) -> np.ndarray:
    pixel = seg.cfg.pixel_mm
    return seg.segment(_crops(seg, cine, s, phases), (pixel, pixel), batch=SEG_BATCH)


def blood_curve(cine: CineStack) -> np.ndarray:
    """(T,) mean intensity of the mid slice in a BLOOD_DISK_MM disk around the LV centre: bright blood
    fills the disk at ED and gives way to thickened, dark myocardium at ES (no network needed)."""
    frames = cine.stack[cine.mid]
    plane = cine.planes[cine.mid]
    r0, c0 = plane.to_pixel(cine.centre)
    rr, cc = np.ogrid[:frames.shape[1], :frames.shape[2]]
    disk = np.hypot((rr - r0) * plane.spacing[0], (cc - c0) * plane.spacing[1]) <= BLOOD_DISK_MM
    if not disk.any():
        return np.zeros(len(frames))
    return np.nan_to_num(frames[:, disk].mean(axis=1))


def _ed_es(seg: Segmenter, cine: CineStack) -> tuple[int, int, dict[int, np.ndarray]]:
    """ED and ES (module docstring, step 2) and the mid slice's masks by phase: the blood curve proposes
    them; with NEAR_PHASES > 0 the segmenter's LV cavity area on the mid slice at each proposal and its
    neighbours decides."""
    t = cine.stack.shape[1]
    curve = blood_curve(cine)
    ed0, es0 = int(np.argmax(curve)), int(np.argmin(curve))
    near = {name: sorted({(c + d) % t for d in range(-NEAR_PHASES, NEAR_PHASES + 1)})
            for name, c in (("ed", ed0), ("es", es0))}
    phases = sorted(set(near["ed"]) | set(near["es"]))
    done = dict(zip(phases, _segment(seg, cine, cine.mid, phases)))
    area = {p: int((m == LV_CAVITY).sum()) for p, m in done.items()}
    ed = max(near["ed"], key=lambda p: (area[p], -p))
    es = min(near["es"], key=lambda p: (area[p], p))
    return ed, es, done


def segment_ed_es(seg: Segmenter, cine: CineStack) -> tuple[np.ndarray, int, int]:
    """(S, 2, n, n) uint8 masks of every slice at ED and ES (on the segmenter's grid), ED, ES."""
    ed, es, mid_masks = _ed_es(seg, cine)
    others = [s for s in range(cine.stack.shape[0]) if s != cine.mid]
    masks = np.zeros((cine.stack.shape[0], 2) + mid_masks[ed].shape, np.uint8)
    masks[cine.mid] = mid_masks[ed], mid_masks[es]
    if others:
        pixel = seg.cfg.pixel_mm
        crops = np.concatenate([_crops(seg, cine, s, [ed, es]) for s in others])
        labels = seg.segment(crops, (pixel, pixel), batch=SEG_BATCH).reshape(len(others), 2, *masks.shape[2:])
        masks[others] = labels
    return masks, ed, es


def display_masks(mid_masks: np.ndarray, pixel_mm: float) -> np.ndarray:
    """(2, n, n) labels on the segmenter's grid -> (2, CACHE_SIZE, CACHE_SIZE) on the cached cine_sax grid
    (both grids are centred on the heart centre in the mid slice's plane; nearest label)."""
    n = mid_masks.shape[-1]
    offs = (np.arange(CACHE_SIZE) - (CACHE_SIZE - 1) / 2) * CACHE_SPACING_MM / pixel_mm + (n - 1) / 2
    idx = np.rint(offs).astype(int)
    ok = (idx >= 0) & (idx < n)
    out = np.zeros((len(mid_masks), CACHE_SIZE, CACHE_SIZE), np.uint8)
    sel = np.ix_(np.flatnonzero(ok), np.flatnonzero(ok))
    for k, m in enumerate(mid_masks):
        out[k][sel] = m[np.ix_(idx[ok], idx[ok])]
    return out


def _rounded(v):
    return round(float(v), ROUND) if isinstance(v, (float, np.floating)) and math.isfinite(v) else v


def measure_study(seg: Segmenter, cine: CineStack, *, height_cm: float | None = None,
                  weight_kg: float | None = None) -> tuple[dict, np.ndarray, list[int]]:
    """-> (measurement fields of the studies row, without mask_path; display masks (2, CACHE_SIZE,
    CACHE_SIZE) uint8 at ED and ES; the cached cine_sax frames of ED and ES)."""
    masks, ed, es = segment_ed_es(seg, cine)
    pixel = seg.cfg.pixel_mm
    gap = cine.slice_spacing_mm(DEFAULT_SLICE_MM)
    m = measure_cine(masks, (pixel, pixel), gap, height_cm=height_cm, weight_kg=weight_kg, ed_es=(0, 1))
    m["ed_phase"], m["es_phase"] = ed, es
    fields = {k: _rounded(m.get(k)) for k in VALUE_COLUMNS}
    fields.update(ed_phase=ed, es_phase=es, seg_quality=m.get("seg_quality"),
                  seg_flags=list(m.get("seg_flags") or []), seg_fingerprint=seg.fingerprint)
    t = cine.stack.shape[1]
    frames = [int(round(p * CACHE_PHASES / t)) % CACHE_PHASES for p in (ed, es)]
    return fields, display_masks(masks[cine.mid], pixel), frames


def unmeasured(seg: Segmenter, reason: str) -> dict:
    """The measurement fields of a study that could not be measured by `seg` (it is not tried again by the
    same segmenter): values None, the reason in seg_flags."""
    return {**dict.fromkeys(VALUE_COLUMNS), "ed_phase": None, "es_phase": None, "seg_quality": None,
            "seg_flags": [reason], "seg_fingerprint": seg.fingerprint, "mask_path": None}


# ---- the segmenter inside prepare's worker processes ---------------------------------------------------
_WORKER: dict = {"seg": None}


def init_worker(seg: Segmenter | None, threads: int | None = 1) -> None:
    """Give this process the segmenter (pool initializer; forked workers share its weights) and one torch
    thread per worker process: the workers already use every core. The network's weights are put in the
    channels-last layout (same results to float rounding; torch's CPU convolutions ~1.5x faster here), for
    when it runs on torch; ONNX Runtime (the CPU default) is built in the worker at its first image."""
    _WORKER["seg"] = seg
    if seg is None:
        return
    _ = seg.fingerprint                               # hashed once (cached), before the layout changes
    seg.net.to(memory_format=torch.channels_last)
    if threads:
        torch.set_num_threads(threads)
    seg.use_runtime()                               # built here, at the first image, with these threads


def worker_segmenter() -> Segmenter | None:
    return _WORKER["seg"]

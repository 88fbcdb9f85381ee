"""Study assembly: one study's typed series -> the cache arrays of model/preprocess.py, plus a QA record.

Steps: gather each view's instances (a SAX stack may span several series) and order them (stacks.py);
read the cine SAX stack; locate the heart: the temporal variance (smoothed std over phases, the largest
blob near the image centre) gives a first guess, then lv.py finds the LV blood pool itself (a bright,
round, beating cavity that runs through the stack) and its axis becomes the centre; choose the mid-ventricular slice (the middle of the slices where the
heart moves); crop a CACHE_SIZE * CACHE_SPACING_MM mm square around the heart centre, projected in 3-D into
every other view's plane, resampled to CACHE_SPACING_MM; resample cines to CACHE_PHASES over the cycle and
the LGE SAX stack to CACHE_LGE_SLICES base -> apex; normalise each series' intensities (1st / 99.5th
percentile -> 0..1). Arrays are float16. The cine SAX stack as read (`CineStack`: the whole (S, T, H, W)
stack, its planes and the heart centre) is handed back too, for the measurements (measurements.py).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cmr_search.indexer.dicom_io import read_frames
from cmr_search.indexer.errors import AssemblyError
from cmr_search.indexer.lv import find_lv
from cmr_search.indexer.records import InstanceRecord, QARecord, SeriesType, StudyRecord
from cmr_search.indexer.stacks import Plane, Slice, group_slices
from cmr_search.model.preprocess import CACHE_LGE_SLICES, CACHE_PHASES, CACHE_SIZE, CACHE_SPACING_MM, CINE_VIEWS, VIEWS

SMOOTH_MM = 12.0         # smoothing of the temporal-std map: the heart becomes one blob
CENTRE_PRIOR_MM = 80.0   # activity further than this from the image centre is down-weighted
HEART_RADIUS_MM = 30.0   # disk around the heart centre used to score slices
LAX_WARN_MM = 20.0       # warn when a long-axis plane misses the heart centre by more than this
LOCATE_MM = 2.5          # locate_heart works on pixels of about this size
LV_MIN_SLICES = 7        # the LV search looks at no fewer slices than this (the middle of the heart)


def _read(instances: list[InstanceRecord]) -> np.ndarray:
    """Pixels of `instances` as (N, H, W) float32 (dicom_io does the decoding)."""
    return np.asarray(read_frames(instances), np.float32)


@dataclass
class HeartLocation:
    mid_slice: int                    # index into the stack (base -> apex order)
    heart_slices: tuple[int, int]     # first and last slice where the heart moves
    row: float                        # heart centre on the mid slice, pixels
    col: float


def _blob_centre(activity: np.ndarray, spacing: tuple[float, float],
                 prior: tuple[float, float] | None = None, prior_mm: float = CENTRE_PRIOR_MM) -> tuple[float, float]:
    """Centre (row, col) of the strongest blob of a 2-D activity map, favouring blobs near `prior`
    (default: the image centre): peak of the smoothed, prior-weighted map, refined to the centroid of
    the peak's blob."""
    sm = ndimage.gaussian_filter(activity, (SMOOTH_MM / spacing[0], SMOOTH_MM / spacing[1]))
    if not np.isfinite(sm).all() or sm.max() <= 0:
        return (activity.shape[0] - 1) / 2, (activity.shape[1] - 1) / 2
    pr, pc = prior if prior else ((sm.shape[0] - 1) / 2, (sm.shape[1] - 1) / 2)
    rr, cc = np.ogrid[:sm.shape[0], :sm.shape[1]]
    weight = np.exp(-(np.hypot((rr - pr) * spacing[0], (cc - pc) * spacing[1]) / prior_mm) ** 2)
    r, c = np.unravel_index(np.argmax(sm * weight), sm.shape)
    labels, _ = ndimage.label(sm > 0.7 * sm[r, c])
    return tuple(float(v) for v in ndimage.center_of_mass(sm * (labels == labels[r, c])))


def locate_heart(stack: np.ndarray, spacing: tuple[float, float]) -> HeartLocation:
    """Heart centre and mid-ventricular slice of a cine stack (S, T, H, W) with pixel spacing (row, col) mm.
    Fine matrices are first block-averaged to about LOCATE_MM pixels (the heart is ~100 mm across; the
    result is the same to a fraction of a millimetre, at a fraction of the cost)."""
    f = max(1, round(LOCATE_MM / max(spacing)))
    if f == 1 or min(stack.shape[2:]) < 16 * f:
        return _locate(stack, spacing)
    h, w = stack.shape[2] // f * f, stack.shape[3] // f * f
    small = sum(stack[:, :, i:h:f, j:w:f] for i in range(f) for j in range(f)) / np.float32(f * f)
    loc = _locate(small, (spacing[0] * f, spacing[1] * f))
    return HeartLocation(loc.mid_slice, loc.heart_slices, loc.row * f + (f - 1) / 2, loc.col * f + (f - 1) / 2)


def _robust_range(a: np.ndarray, n: int = 1 << 19) -> tuple[float, float]:
    """1st and 99.5th percentiles of a, from an evenly strided sample of about n values."""
    flat = a.reshape(-1)
    lo, hi = np.percentile(flat[::max(1, flat.size // n)], [1, 99.5])
    return float(lo), float(hi)


def _moving_slices(std: np.ndarray, spacing: tuple[float, float], row: float, col: float) -> tuple[int, int]:
    """First and last slice whose temporal std in the heart disk around (row, col) is >= half the peak."""
    rr, cc = np.ogrid[:std.shape[1], :std.shape[2]]
    disk = np.hypot((rr - row) * spacing[0], (cc - col) * spacing[1]) <= HEART_RADIUS_MM
    if not disk.any():                       # centre estimate outside the image: every slice counts
        return 0, len(std) - 1
    per_slice = np.nan_to_num(std[:, disk].mean(axis=1))                   # (S,)
    moving = np.flatnonzero(per_slice >= 0.5 * per_slice.max())
    return (int(moving.min()), int(moving.max())) if moving.size else (0, len(std) - 1)


def _lv_slices(first: int, last: int, n_slices: int) -> slice:
    """The middle half of the moving slices (at least LV_MIN_SLICES): the LV search runs only there."""
    n = last - first + 1
    keep = min(n_slices, max(LV_MIN_SLICES, (n + 1) // 2))
    start = min(max(0, (first + last + 1 - keep) // 2), n_slices - keep)
    return slice(start, start + keep)


def _locate(stack: np.ndarray, spacing: tuple[float, float]) -> HeartLocation:
    lo, hi = _robust_range(stack)
    scaled = (stack - np.float32(lo)) / np.float32(max(hi - lo, 1e-6))
    std = scaled.std(axis=1)                                               # (S, H, W)
    row, col = _blob_centre(std.mean(axis=0), spacing)
    lv = None
    if len(stack) > 1:
        part = _lv_slices(*_moving_slices(std, spacing, row, col), len(stack))
        lv = find_lv(scaled[part], spacing, (row, col))
    if lv is not None:                                                     # the LV cavity, not the
        row, col = lv                                                      # whole moving region
    first, last = _moving_slices(std, spacing, row, col)
    mid = (first + last) // 2 if len(stack) > 1 else 0
    if lv is None:
        row, col = _blob_centre(std[mid], spacing, prior=(row, col), prior_mm=HEART_RADIUS_MM)
    return HeartLocation(mid, (first, last), row, col)


@dataclass
class CineStack:
    """The cine SAX stack as read, with its geometry and the heart centre the assembler found."""
    stack: np.ndarray                 # (S, T, H, W) float32: slices base -> apex, phases in time order
    planes: list[Plane]               # one per slice
    mid: int                          # the mid-ventricular slice (the cached cine_sax view is its crop)
    centre: np.ndarray                # heart centre, patient mm (on the mid slice's plane)
    slice_thickness: float | None = None   # SliceThickness of the first image, mm (where geometry fails)

    @property
    def spacing(self) -> tuple[float, float]:
        return self.planes[self.mid].spacing

    def slice_spacing_mm(self, fallback: float) -> float:
        """Median distance between neighbouring slice positions along the normal; the slice thickness,
        else `fallback`, when the stack has one slice or no real geometry."""
        fallback = self.slice_thickness or fallback
        if len(self.planes) < 2 or not all(p.real for p in self.planes):
            return float(fallback)
        n = self.planes[self.mid].normal
        pos = np.array([p.ipp @ n for p in self.planes])
        gaps = np.abs(np.diff(pos))
        return float(np.median(gaps)) if gaps.size and np.median(gaps) > 0 else float(fallback)


def crop_plane(frames: np.ndarray, plane: Plane, centre: np.ndarray, size: int = CACHE_SIZE,
               spacing_mm: float = CACHE_SPACING_MM) -> np.ndarray:
    """(N, H, W) frames of one plane -> (N, size, size) float32 around the projection of `centre`
    (patient mm), at `spacing_mm` (default: the cache's grid); NaN outside the acquired field of view."""
    r0, c0 = plane.to_pixel(centre)
    offs = (np.arange(size) - (size - 1) / 2) * spacing_mm
    rr = np.broadcast_to(r0 + offs[:, None] / plane.spacing[0], (size, size))
    cc = np.broadcast_to(c0 + offs[None, :] / plane.spacing[1], (size, size))
    ratio = np.array([spacing_mm / s for s in plane.spacing])
    sigma = np.where(ratio > 1.2, 0.5 * np.sqrt(np.maximum(ratio ** 2 - 1, 0)), 0.0)   # anti-alias
    out = np.empty((len(frames), size, size), np.float32)
    for k, frame in enumerate(frames):
        f = ndimage.gaussian_filter(frame, sigma) if sigma.any() else frame
        out[k] = ndimage.map_coordinates(f, [rr, cc], order=1, cval=np.nan)
    return out


def resample_phases(frames: np.ndarray, n: int = CACHE_PHASES) -> np.ndarray:
    """(T, H, W) frames of one cardiac cycle -> (n, H, W), linear and cyclic in time (ED stays first)."""
    t = np.arange(n) * len(frames) / n
    i0 = np.floor(t).astype(int)
    w = (t - i0)[:, None, None].astype(np.float32)
    return frames[i0] * (1 - w) + frames[(i0 + 1) % len(frames)] * w


def resample_slices(frames: np.ndarray, n: int = CACHE_LGE_SLICES) -> np.ndarray:
    """(S, H, W) stack base -> apex -> (n, H, W), linear between neighbouring slices."""
    if len(frames) == 1:
        return np.repeat(frames, n, axis=0)
    t = np.linspace(0, len(frames) - 1, n)
    i0 = np.minimum(np.floor(t).astype(int), len(frames) - 2)
    w = (t - i0)[:, None, None].astype(np.float32)
    return frames[i0] * (1 - w) + frames[i0 + 1] * w


def normalise(frames: np.ndarray) -> np.ndarray | None:
    """Robust per-series scaling: 1st / 99.5th percentile -> 0..1, clipped; NaN (outside FOV) -> 0.
    None when nothing of the view falls inside the crop."""
    if not np.isfinite(frames).any():
        return None
    lo, hi = np.nanpercentile(frames, [1, 99.5])
    out = np.clip((frames - lo) / max(float(hi - lo), 1e-6), 0, 1)
    return np.nan_to_num(out, nan=0.0).astype(np.float16)


def _view_instances(study: StudyRecord, types: dict[str, SeriesType], view: str) -> dict[str, list]:
    return {s.series_instance_uid: s.instances for s in study.series
            if types.get(s.series_instance_uid) and types[s.series_instance_uid].view == view and s.instances}


def _read_stack(slices: list[Slice], warnings: list[str]) -> np.ndarray:
    """Slices -> (S, T, H, W), every slice brought to the commonest phase count and image shape."""
    counts = Counter(len(s.instances) for s in slices)
    n_t = counts.most_common(1)[0][0]
    shape = Counter(s.plane.shape for s in slices).most_common(1)[0][0]
    keep = [s for s in slices if s.plane.shape == shape]
    if len(keep) < len(slices):
        warnings.append(f"cine SAX: {len(slices) - len(keep)} slices with another matrix size dropped")
    if len(counts) > 1:
        warnings.append(f"cine SAX slices have {sorted(counts)} phases; resampled to {n_t}")
    frames = _read([i for s in keep for i in s.instances])
    out, start = [], 0
    for s in keep:
        f = frames[start:start + len(s.instances)]
        start += len(s.instances)
        out.append(f if len(f) == n_t else resample_phases(f, n_t))
    slices[:] = keep
    return np.stack(out)


def _closest_slice(slices: list[Slice], centre: np.ndarray | None) -> Slice:
    if centre is None or not all(s.plane.real for s in slices):
        return max(slices, key=lambda s: len(s.instances))
    return min(slices, key=lambda s: s.plane.distance(centre))


def _centre_from_cine_sax(slices: list[Slice], stack: np.ndarray) -> tuple[np.ndarray, int]:
    plane = slices[0].plane
    loc = locate_heart(stack, plane.spacing)
    return slices[loc.mid_slice].plane.to_patient(loc.row, loc.col), loc.mid_slice


def _centre_from_lax(slices: list[Slice], frames: np.ndarray) -> np.ndarray:
    plane = slices[0].plane
    loc = locate_heart(frames[None], plane.spacing)
    return plane.to_patient(loc.row, loc.col)


class _Assembler:
    """Holds one study's state while its views are built, so each step stays a short method."""

    def __init__(self, study: StudyRecord, types: dict[str, SeriesType]):
        self.study, self.types = study, types
        self.views: dict[str, np.ndarray] = {}
        self.frames: dict[str, int] = {}
        self.warnings: list[str] = []
        self.missing_geometry = 0
        self.centre: np.ndarray | None = None
        self.cine: CineStack | None = None

    def slices(self, view: str) -> list[Slice]:
        insts = _view_instances(self.study, self.types, view)
        if not insts:
            return []
        slices, missing = group_slices(insts)
        self.missing_geometry += missing
        return slices

    def centre_in(self, plane: Plane) -> np.ndarray:
        """The heart centre to crop around in `plane`; the image centre when geometry is lacking."""
        if self.centre is not None and plane.real:
            return self.centre
        return plane.to_patient((plane.shape[0] - 1) / 2, (plane.shape[1] - 1) / 2)

    def store(self, view: str, frames: np.ndarray, plane: Plane, centre: np.ndarray | None = None) -> None:
        centre = self.centre_in(plane) if centre is None else centre
        if plane.real and self.centre is not None and plane.distance(self.centre) > LAX_WARN_MM:
            self.warnings.append(f"{view} plane is {plane.distance(self.centre):.0f} mm from the heart centre")
        arr = normalise(crop_plane(frames, plane, centre))
        if arr is None:
            self.warnings.append(f"{view}: the heart centre falls outside the image; view dropped")
            return
        self.views[view] = arr

    def read_cine_sax(self) -> CineStack | None:
        """The whole cine SAX stack (S, T, H, W) and the heart centre; None when the study has none."""
        slices = self.slices("cine_sax")
        if not slices:
            return None
        stack = _read_stack(slices, self.warnings)                         # (S, T, H, W)
        centre, mid = _centre_from_cine_sax(slices, stack)
        return CineStack(stack, [s.plane for s in slices], mid, centre, slices[0].instances[0].slice_thickness)

    def cine_sax(self) -> None:
        cine = self.cine = self.read_cine_sax()
        if cine is None:
            return
        plane = cine.planes[cine.mid]
        self.centre = cine.centre if plane.real else None
        self.frames["cine_sax"], self.frames["cine_sax_slices"] = cine.stack.shape[1], cine.stack.shape[0]
        self.store("cine_sax", resample_phases(cine.stack[cine.mid]), plane, cine.centre)

    def cine_lax(self, view: str) -> None:
        slices = self.slices(view)
        if not slices:
            return
        chosen = _closest_slice(slices, self.centre)
        frames = _read(chosen.instances)
        if self.centre is None and chosen.plane.real:
            self.centre = _centre_from_lax([chosen], frames)
        self.frames[view] = len(frames)
        self.store(view, resample_phases(frames), chosen.plane)

    def lge_sax(self) -> None:
        slices = self.slices("lge_sax")
        if not slices:
            return
        picks = [s.instances[len(s.instances) // 2] for s in slices]       # one image per position
        frames = _read(picks)
        self.frames["lge_sax"] = len(frames)
        crops = np.concatenate([crop_plane(frames[k:k + 1], s.plane, self.centre_in(s.plane))
                                for k, s in enumerate(slices)])
        arr = normalise(resample_slices(crops))
        if arr is not None:
            self.views["lge_sax"] = arr

    def lge_lax(self, view: str) -> None:
        slices = self.slices(view)
        if not slices:
            return
        chosen = _closest_slice(slices, self.centre)
        inst = chosen.instances[len(chosen.instances) // 2]
        self.frames[view] = 1
        self.store(view, _read([inst]), chosen.plane)

    def phase_warnings(self) -> None:
        cine = {v: self.frames[v] for v in CINE_VIEWS if v in self.frames}
        if len(set(cine.values())) > 1:
            common = Counter(cine.values()).most_common(1)[0][0]
            for v, n in cine.items():
                if n != common:
                    self.warnings.append(f"{v} has {n} phases, others {common}")

    def qa(self) -> QARecord:
        self.phase_warnings()
        if self.missing_geometry:
            self.warnings.append(f"geometry tags missing on {self.missing_geometry} files")
        if not any(v.startswith("lge") for v in self.views):
            self.warnings.append("no LGE")
        found = [v for v in VIEWS if v in self.views]
        return QARecord(found, [v for v in VIEWS if v not in self.views], dict(self.frames), self.warnings)


def assemble_study(study: StudyRecord, types: dict[str, SeriesType]) -> tuple[dict[str, np.ndarray], QARecord]:
    """Typed study -> (view name -> float16 array per model/preprocess.py, QA record).

    Raises AssemblyError when the study has no usable cine view (nothing to cache)."""
    views, qa, _ = assemble_with_cine(study, types)
    return views, qa


def read_cine_sax(study: StudyRecord, types: dict[str, SeriesType]) -> CineStack | None:
    """Only the cine SAX stack of a typed study, read and located as assemble_study does (the arrays of
    a cached study need not be rebuilt to measure it); None when the study has no cine SAX series."""
    return _Assembler(study, types).read_cine_sax()


def assemble_with_cine(study: StudyRecord, types: dict[str, SeriesType]
                       ) -> tuple[dict[str, np.ndarray], QARecord, CineStack | None]:
    """assemble_study, plus the whole cine SAX stack it read (None when there is none)."""
    a = _Assembler(study, types)
    a.cine_sax()
    for view in ("cine_4ch", "cine_2ch", "cine_3ch"):
        a.cine_lax(view)
    if not any(v in a.views for v in CINE_VIEWS):
        raise AssemblyError("no cine series found (no series typed cine_sax / cine_2ch / cine_3ch / "
                            "cine_4ch); check the series typing reasons in the QA report")
    a.lge_sax()
    for view in ("lge_2ch", "lge_3ch", "lge_4ch"):
        a.lge_lax(view)
    return a.views, a.qa(), a.cine

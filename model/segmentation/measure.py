"""What a CMR report measures, from cine short-axis masks: volumes, ejection fractions, mass, wall thickness.

    m = measure_cine(masks, (1.4, 1.4), 8.0, height_cm=178, weight_kg=80)   # masks (S, T, H, W), LABELS
    m["lvef"], m["lv_mass"], m["max_wall"], m["seg_quality"], m["seg_flags"]

Definitions (masks: S slices base -> apex, T phases, labels 1 RV cavity, 2 LV myocardium, 3 LV cavity;
ACDC's convention: papillary muscles and trabeculations are cavity):

- Volumes, summation of discs: V = sum_s A_s * d / 1000 ml, A_s the structure's area on slice s (pixel count
  x row mm x column mm), d the centre-to-centre slice spacing in mm.
- ED and ES: a full cine (T >= 5) without `ed_es`: ED = the phase of largest LV cavity volume, ES = of the
  smallest. Fewer phases without `ed_es`: the same rule, flagged "not a full cine: ED/ES assumed".
  `ed_es=(i, j)` fixes them (ACDC's two frames: (0, 1)). The RV is measured at the same two phases.
- EF = (EDV - ESV) / EDV x 100 %, for the LV and the RV.
- LV mass = myocardial volume at ED x 1.05 g/ml.
- Maximum end-diastolic wall thickness (mm): on each ED slice with an LV cavity, the wall thickness at
  every endocardial border pixel is its distance to the epicardium (the outside of cavity + myocardium,
  holes filled; Euclidean distance in mm, minus one pixel for the pixel-centre offset), so the chord runs
  along the wall's normal. A slice's thickness is the 95th percentile over its border (a noisy pixel does
  not make it); max_wall is the largest slice value over slices with a closed myocardial ring (all slices
  with a cavity when none is closed). Slices whose ring opens (basal LV outflow tract) are left out
  because the outflow tract's rim is not a wall.
- Body surface area (Mosteller): BSA = sqrt(height cm x weight kg / 3600) m^2; indexed values = value / BSA
  (ml/m^2, g/m^2).

Coverage: "base not covered" when the most basal slice is (about) the LV's widest, >= 95 % of the
largest ED cavity area, with a closed myocardial ring (the stack probably starts below the mitral annulus;
ACDC's experts' masks trip it on 8 of 20 patients whose stacks start at a full basal ring); "apex not
covered" when the most apical slice still has >= 30 % of that area; "slices dropped" for slices without LV
between slices with LV.

Quality: `seg_flags` lists short reasons, `seg_quality` is "poor" when a number would be wrong (no LV,
LVEF outside 5-90 %), "check" when a number may be off (coverage, gaps, broken rings, assumed phases, no
RV), else "good". Unavailable values are None, never a made-up number.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

RV, MYO, LV = 1, 2, 3
MYO_DENSITY_G_ML = 1.05
WALL_PERCENTILE = 95.0          # per-slice wall thickness: this percentile of the border's thicknesses
FULL_CINE_PHASES = 5            # at least this many phases: ED/ES are read from the LV volume curve
BASE_AREA_FRACTION = 0.95       # basal slice with a closed ring at >= this x the largest ED area: base cut
APEX_AREA_FRACTION = 0.3        # apical slice with a cavity >= this x the largest ED area: apex cut
RING_CLOSED_FRACTION = 0.9      # a ring is closed when the myocardium's filled hull covers this of the cavity
EF_RANGE = (5.0, 90.0)          # LVEF outside this range: the masks are wrong, not the heart
MIN_LV_ML = 1.0                 # less LV cavity than this at ED: no LV found

MEASURE_KEYS = ("lvedv", "lvesv", "lvef", "lv_mass", "max_wall", "rvedv", "rvesv", "rvef", "bsa",
                "lvedvi", "lvesvi", "lv_massi", "rvedvi", "rvesvi", "ed_phase", "es_phase")


def bsa_mosteller(height_cm: float | None, weight_kg: float | None) -> float | None:
    """Body surface area in m^2 (Mosteller); None when either is missing or not positive."""
    if not height_cm or not weight_kg or height_cm <= 0 or weight_kg <= 0:
        return None
    return math.sqrt(height_cm * weight_kg / 3600.0)


def volume_curve(masks: np.ndarray, label: int, pixel_spacing_mm, slice_spacing_mm: float) -> np.ndarray:
    """(S, T, H, W) masks -> (T,) volume of `label` per phase in ml (summation of discs)."""
    voxel_ml = float(pixel_spacing_mm[0]) * float(pixel_spacing_mm[1]) * float(slice_spacing_mm) / 1000.0
    return (masks == label).sum(axis=(0, 2, 3)).astype(np.float64) * voxel_ml


def ring_closed(myo: np.ndarray, cavity: np.ndarray) -> bool:
    """True when the myocardium encloses the cavity (its filled hull covers the cavity)."""
    n = int(cavity.sum())
    if n == 0:
        return False
    hull = ndimage.binary_fill_holes(myo)
    return float((hull & cavity).sum()) / n >= RING_CLOSED_FRACTION


def slice_wall_thickness(myo: np.ndarray, cavity: np.ndarray, pixel_spacing_mm) -> float | None:
    """One slice's wall thickness in mm (WALL_PERCENTILE over the endocardial border); None without a wall."""
    if not cavity.any() or not myo.any():
        return None
    epi = ndimage.binary_fill_holes(myo | cavity)
    to_outside = ndimage.distance_transform_edt(epi, sampling=pixel_spacing_mm)
    border = cavity & ndimage.binary_dilation(myo, structure=ndimage.generate_binary_structure(2, 1))
    if not border.any():
        return None
    pixel = float(np.mean(pixel_spacing_mm))
    values = np.clip(to_outside[border] - pixel, 0.0, None)
    return float(np.percentile(values, WALL_PERCENTILE))


def max_wall_thickness(ed_masks: np.ndarray, pixel_spacing_mm) -> tuple[float | None, int]:
    """(S, H, W) ED masks -> (max wall thickness mm, number of cavity slices whose ring is broken)."""
    closed, other, broken = [], [], 0
    for sl in ed_masks:
        myo, cav = sl == MYO, sl == LV
        if not cav.any():
            continue
        t = slice_wall_thickness(myo, cav, pixel_spacing_mm)
        is_closed = ring_closed(myo, cav)
        broken += not is_closed
        if t is not None:
            (closed if is_closed else other).append(t)
    values = closed or other
    return (max(values) if values else None), broken


def pick_phases(lv_curve: np.ndarray, ed_es, flags: list[str]) -> tuple[int, int | None]:
    """ED and ES phase indices (see the module docstring); ES None for a single phase."""
    t = len(lv_curve)
    if ed_es is not None:
        ed, es = int(ed_es[0]), int(ed_es[1])
        if not (0 <= ed < t and 0 <= es < t):
            raise ValueError(f"ed_es={tuple(ed_es)} outside the {t} phases of the masks")
        return ed, es
    if t < FULL_CINE_PHASES:
        flags.append("not a full cine: ED/ES assumed")
    if t == 1:
        return 0, None
    return int(np.argmax(lv_curve)), int(np.argmin(lv_curve))


def _ef(edv: float | None, esv: float | None) -> float | None:
    if edv is None or esv is None or edv <= 0:
        return None
    return (edv - esv) / edv * 100.0


def _coverage_flags(ed_masks: np.ndarray, flags: list[str]) -> None:
    """Base and apex coverage and gaps in the LV run, from the ED cavity areas per slice."""
    area = (ed_masks == LV).sum(axis=(1, 2)).astype(float)
    present = np.flatnonzero(area > 0)
    top = area.max()
    if ring_closed(ed_masks[0] == MYO, ed_masks[0] == LV) and area[0] >= BASE_AREA_FRACTION * top:
        flags.append("base not covered")
    if area[-1] >= APEX_AREA_FRACTION * top:
        flags.append("apex not covered")
    gaps = [int(s) for s in range(present[0], present[-1] + 1) if area[s] == 0]
    if gaps:
        flags.append(f"slices dropped: no LV on slice(s) {gaps} inside the LV")


def _index(values: dict, bsa: float | None) -> dict:
    out = {"bsa": bsa}
    for key, src in (("lvedvi", "lvedv"), ("lvesvi", "lvesv"), ("lv_massi", "lv_mass"),
                     ("rvedvi", "rvedv"), ("rvesvi", "rvesv")):
        out[key] = values[src] / bsa if bsa is not None and values[src] is not None else None
    return out


def _quality(flags: list[str]) -> str:
    if any(f.startswith(("no LV", "implausible: LVEF")) for f in flags):
        return "poor"
    return "check" if flags else "good"


def _empty(flags: list[str], ed: int | None, es: int | None, bsa: float | None) -> dict:
    out = {k: None for k in MEASURE_KEYS}
    out.update(bsa=bsa, ed_phase=ed, es_phase=es, seg_quality=_quality(flags), seg_flags=flags)
    return out


def measure_cine(masks: np.ndarray, pixel_spacing_mm, slice_spacing_mm: float, *, height_cm: float | None = None,
                 weight_kg: float | None = None, ed_es: tuple[int, int] | None = None) -> dict:
    """(S, T, H, W) uint8 masks (LABELS) -> measurements (see the module docstring for every formula).

    pixel_spacing_mm: (row mm, column mm); slice_spacing_mm: centre-to-centre distance of the slices.
    Keys: MEASURE_KEYS (floats or None; ed_phase/es_phase ints), seg_quality, seg_flags."""
    masks = np.asarray(masks)
    if masks.ndim != 4:
        raise ValueError(f"expected (slices, phases, rows, cols) masks; got shape {masks.shape}")
    if not slice_spacing_mm or slice_spacing_mm <= 0:
        raise ValueError(f"slice spacing must be positive; got {slice_spacing_mm}")
    flags: list[str] = []
    bsa = bsa_mosteller(height_cm, weight_kg)
    lv = volume_curve(masks, LV, pixel_spacing_mm, slice_spacing_mm)
    ed, es = pick_phases(lv, ed_es, flags)
    if lv[ed] < MIN_LV_ML:
        return _empty(["no LV found", *flags], ed, es, bsa)
    myo = volume_curve(masks[:, ed:ed + 1], MYO, pixel_spacing_mm, slice_spacing_mm)[0]
    rv = volume_curve(masks, RV, pixel_spacing_mm, slice_spacing_mm)
    v = {"lvedv": float(lv[ed]), "lvesv": None if es is None else float(lv[es]),
         "lv_mass": float(myo * MYO_DENSITY_G_ML) if myo > 0 else None}
    v["lvef"] = _ef(v["lvedv"], v["lvesv"])
    if rv[ed] > 0:
        v["rvedv"], v["rvesv"] = float(rv[ed]), None if es is None else float(rv[es])
    else:
        v["rvedv"] = v["rvesv"] = None
        flags.append("RV not found")
    v["rvef"] = _ef(v["rvedv"], v["rvesv"])
    ed_masks = masks[:, ed]
    v["max_wall"], broken = max_wall_thickness(ed_masks, pixel_spacing_mm)
    _coverage_flags(ed_masks, flags)
    n_lv = int(((ed_masks == LV).sum(axis=(1, 2)) > 0).sum())
    if broken > max(1, n_lv // 4):
        flags.append(f"implausible: myocardium ring broken on {broken} of {n_lv} slices")
    if v["lvef"] is not None and not EF_RANGE[0] <= v["lvef"] <= EF_RANGE[1]:
        flags.append(f"implausible: LVEF outside {EF_RANGE[0]:g}-{EF_RANGE[1]:g} ({v['lvef']:.0f} %)")
    if v["rvef"] is not None and not EF_RANGE[0] <= v["rvef"] <= EF_RANGE[1]:
        # the RV masks are wrong (e.g. an RV missed at ED: RVEF -2000 %): no RV number reaches the index
        flags.append(f"implausible: RVEF outside {EF_RANGE[0]:g}-{EF_RANGE[1]:g} ({v['rvef']:.0f} %); "
                     "RV volumes withheld")
        v["rvedv"] = v["rvesv"] = v["rvef"] = None
    out = {**v, **_index(v, bsa), "ed_phase": ed, "es_phase": es}
    out.update(seg_quality=_quality(flags), seg_flags=flags)
    return out

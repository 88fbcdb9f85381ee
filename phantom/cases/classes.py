"""Per-class latent samplers (phantom.md §1.2), one small function per class in `SAMPLERS`.

Each sampler receives the healthy baseline dict built by params._normal_base and overrides what its
class changes. Ranges overlap on purpose and were calibrated against the audit oracle (params.py
docstring). The shared random draws live in phantom.randomness; the joint EDVi/EF draw and the
wall map live here, public, so params.py can reuse them.

Calibration (oracle one-vs-rest AUC targets: HCM ~0.99, amyloid ~0.97, ICM/NICM ~0.94) under the
ACDC class rules (phantom.cases.rules), which push NICM/ICM to EF < 40 and HCM to walls >= 15: the
overlap therefore comes from hard negatives and mimics rather than from EF/EDVi tails. Rates that
depart from the §1.2 literature values on purpose: NICM mid-wall stripe 19 % (§1.2 ~45 %) and
ischemic-looking focal LGE 39 % (§1.2 ~7 %); ICM without scar (hibernating) 42 %; small 2-3
segment infarcts 55 % of territories; amyloid without LGE 34 % (§1.2 ~10 %), asymmetric septum 30 %;
HCM apical 16 %, concentric 15 %; OTHER rich in DCM mimics (post-myocarditis, decompensated
regurgitation, sarcoid), amyloid mimics (aortic stenosis with LGE) and RV mimics (tricuspid
regurgitation with a dilated RV); athletes with RV/LV up to 1.3 and RVEF 42-60.
"""
from __future__ import annotations

import numpy as np

from cmr_search.phantom.cases.latent import TERRITORY_SEGMENTS, LGEPatch
from cmr_search.phantom.randomness import mvn_clipped, truncated_normal, uniform

SEPTAL = (2, 3, 8, 9, 14)          # AHA segments of the interventricular septum
LATERAL = (5, 6, 11, 12, 16)       # AHA segments of the lateral wall
APICAL = (13, 14, 15, 16, 17)


# --- shared draws of the class samplers (params.py reuses them) ---------------------------------
def edvi_ef(rng, edvi, ef, rho):
    """(EDVi, EF) drawn jointly in (log EDVi, EF) space. edvi/ef = (mean, sd, lo, hi)."""
    z = mvn_clipped(rng, (np.log(edvi[0]), ef[0]), (edvi[1] / edvi[0], ef[1]), rho,
                     (np.log(edvi[2]), ef[2]), (np.log(edvi[3]), ef[3]))
    return float(np.exp(z[0])), float(z[1])


def seg_array(value) -> np.ndarray:
    return np.full(17, float(value))


def _idx(segs) -> list[int]:
    return [s - 1 for s in segs]


def wall_map(rng, base_mm) -> np.ndarray:
    """(17,) near-uniform wall: apical segments ~12 % thinner, apex ~25 %, small per-segment noise."""
    w = seg_array(base_mm) * rng.normal(1.0, 0.03, 17)
    w[_idx(APICAL[:4])] *= 0.88
    w[16] *= 0.75
    return w


def _dot(rng, strength=(0.3, 0.6)) -> LGEPatch:
    """Tiny nonspecific RV-insertion-point focus (normal hearts, HTN)."""
    seg = (3,) if rng.random() < 0.6 else (2,)
    return LGEPatch("dot", seg, (0.3, 0.7), uniform(rng, *strength), 0.0)


# --- per-class samplers ----------------------------------------------------------------------------
def _normal(rng, d, sex):
    if rng.random() < 0.02:
        d["subtype"] = "rv_insertion_dot"
        d["lge"].append(_dot(rng))


def _athlete(rng, d, sex):
    edvi, ef = edvi_ef(rng, (104, 9, 88, 125), (57, 4, 48, 65), -0.3)
    wall = truncated_normal(rng, 10.5, 1.0, 9, 13) if sex == "M" else truncated_normal(rng, 9.3, 0.8, 8, 11)
    d.update(subtype="athlete", hr_bpm=truncated_normal(rng, 50, 5, 40, 60), lv_edvi=edvi, lv_ef=ef,
             wall_ed_mm=wall_map(rng, wall), rv_edvi=float(np.clip(edvi * uniform(rng, 1.0, 1.3), 100, 150)),
             rv_ef=truncated_normal(rng, 50, 5, 42, 60), la_scale=uniform(rng, 1.0, 1.25),
             ra_scale=uniform(rng, 1.0, 1.2))


def _nicm(rng, d, sex):
    recovered = rng.random() < 0.04               # treated NICM, function normalised (HFimpEF)
    if recovered:
        edvi, ef = edvi_ef(rng, (76, 10, 60, 100), (62, 6, 50, 72), -0.5)
    else:
        edvi, ef = edvi_ef(rng, (128, 20, 88, 175), (30, 7, 15, 48), -0.5)
    wall = truncated_normal(rng, 8.0, 1.0, 6, 10) if recovered else truncated_normal(rng, 7.8, 1.1, 5, 10)
    d.update(lv_edvi=edvi, lv_ef=ef, wall_ed_mm=wall_map(rng, wall),
             sphericity=uniform(rng, 0.4, 0.9), base_descent_mm=uniform(rng, 4, 8),
             la_scale=uniform(rng, 1.1, 1.5),
             hr_bpm=truncated_normal(rng, 75, 10, 50, 95), t1_myo_post=uniform(rng, 420, 480))
    d["contractility"][_idx(SEPTAL)] = uniform(rng, 0.6, 1.0)      # septal dyssynchrony
    if not recovered and rng.random() < 0.30:                 # biventricular involvement
        d.update(rv_edvi=truncated_normal(rng, 115, 15, 90, 160), rv_ef=truncated_normal(rng, 36, 6, 20, 45))
    r = rng.random()
    if r < 0.19:
        d["subtype"] = "midwall"
        n = int(rng.integers(1, 5))
        segs = tuple(sorted(rng.choice([2, 3, 8, 9], size=n, replace=False).tolist()))
        d["lge"].append(LGEPatch("midwall", segs, (0.4, 0.6), uniform(rng, 0.5, 0.9), uniform(rng, 0.2, 0.7)))
    elif r < 0.58:                                # ischemic-looking focal LGE (calibrated, §5.4)
        d["subtype"] = "focal_ischemic"
        segs = rng.choice([3, 4, 5, 10, 11, 9, 15], size=int(rng.integers(1, 6)), replace=False)
        d["lge"].append(LGEPatch("subendo", tuple(sorted(int(x) for x in segs)),
                                 (0.0, uniform(rng, 0.2, 0.7)), uniform(rng, 0.6, 0.9)))
    else:
        d["subtype"] = "no_lge"
    if recovered:
        d["subtype"] += "_recovered"


def _territory_segments(rng, terr: str) -> tuple[int, ...]:
    """Typical supply with 10-20 % boundary variation: drop/add neighbouring segments."""
    segs = set(TERRITORY_SEGMENTS[terr])
    p = uniform(rng, 0.10, 0.20)
    for s in list(segs):
        if len(segs) > 2 and rng.random() < p:
            segs.discard(s)
    for other, osegs in TERRITORY_SEGMENTS.items():
        if other != terr:
            segs.update(s for s in osegs if rng.random() < p / 2)
    return tuple(sorted(segs))


def _icm(rng, d, sex):
    edvi, ef = edvi_ef(rng, (126, 20, 80, 175), (30, 7, 15, 52), -0.5)
    remote = truncated_normal(rng, 8.2, 1.1, 6, 11)
    d.update(lv_edvi=edvi, lv_ef=ef, wall_ed_mm=wall_map(rng, remote), sphericity=uniform(rng, 0.2, 0.6),
             base_descent_mm=uniform(rng, 6, 10), hr_bpm=truncated_normal(rng, 74, 10, 50, 95),
             la_scale=uniform(rng, 1.0, 1.4))
    terrs = ["LAD", "RCA", "LCx"]
    first = str(rng.choice(terrs, p=[0.5, 0.3, 0.2]))
    chosen = [first] if rng.random() < 0.8 else [first, str(rng.choice([t for t in terrs if t != first]))]
    d["territories"] = tuple(chosen)
    no_scar = rng.random() < 0.42                  # no LGE (6 % in PubMed 16828180; calibrated up)
    d["subtype"] = "no_scar" if no_scar else ("single" if len(chosen) == 1 else "double")
    for terr in chosen:
        _infarct(rng, d, terr, no_scar)
    if "LAD" in chosen and not no_scar and rng.random() < 0.15:
        d["aneurysm"] = True
        d["contractility"][16] = uniform(rng, -0.3, -0.1)
        d["thrombus"] = rng.random() < 0.25
    if "RCA" in chosen and rng.random() < 0.10:     # RV infarct
        d.update(rv_ef=truncated_normal(rng, 40, 5, 30, 48))


def _infarct(rng, d, terr: str, no_scar: bool):
    """Thinned, akinetic territory with subendo->transmural LGE (or hibernating, no LGE)."""
    segs = _territory_segments(rng, terr)
    if rng.random() < 0.55:                        # small infarct: 2-3 segments of the territory
        segs = tuple(sorted(int(x) for x in rng.choice(segs, size=min(len(segs), int(rng.integers(2, 4))),
                                                       replace=False)))
    trans = uniform(rng, 0.25, 1.0)
    idx = _idx(segs)
    if no_scar:                                    # hibernating: severely hypokinetic
        d["contractility"][idx] = uniform(rng, 0.2, 0.45)
        return
    d["contractility"][idx] = uniform(rng, 0.0, 0.2) if trans > 0.5 else uniform(rng, 0.3, 0.6)
    if trans > 0.5:
        d["wall_ed_mm"][idx] = np.clip(d["wall_ed_mm"][idx] * (1 - 0.55 * trans), 3.0, 6.0)
    pattern = "transmural" if trans > 0.75 else "subendo"
    d["lge"].append(LGEPatch(pattern, segs, (0.0, trans), uniform(rng, 0.8, 1.0), uniform(rng, 0.0, 0.3)))


def _hcm_classic(rng, d, max_wall):
    """Asymmetric septal hypertrophy: basal/mid septum at max, anterior intermediate."""
    lateral = truncated_normal(rng, 9.0, 1.0, 7, 11)
    w = wall_map(rng, lateral)
    w[_idx((2, 3, 8, 9))] = max_wall * rng.uniform(0.85, 1.0, 4)
    w[int(rng.choice([1, 2, 7, 8]))] = max_wall
    w[_idx((1, 7, 14))] = np.maximum(w[_idx((1, 7, 14))], 0.6 * max_wall + 0.4 * lateral)
    return w


def _hcm_apical(rng, d, max_wall):
    w = wall_map(rng, truncated_normal(rng, 9.0, 1.0, 7, 11))
    w[_idx(APICAL)] = max_wall * rng.uniform(0.8, 1.0, 5)
    w[12] = max_wall
    return w


def _hcm(rng, d, sex):
    r = rng.random()
    sub = "apical" if r < 0.16 else "end_stage" if r < 0.21 else "concentric" if r < 0.36 else "classic"
    if sub == "end_stage":
        edvi, ef = edvi_ef(rng, (95, 12, 75, 125), (42, 5, 30, 50), -0.4)
        max_wall = truncated_normal(rng, 16, 2, 13, 20)
    else:
        max_wall, ef = mvn_clipped(rng, (17.5, 68), (3.5, 5), 0.4, (13, 55), (30, 80))
        edvi = truncated_normal(rng, 68, 8, 55, 85)
    if sub == "concentric":                       # symmetric HCM: mimics amyloid / HTN / AS
        max_wall = min(max_wall, uniform(rng, 14, 20))
        w = wall_map(rng, max_wall * 0.9)
        w[int(rng.integers(0, 12))] = max_wall
    else:
        w = (_hcm_apical if sub == "apical" else _hcm_classic)(rng, d, max_wall)
    d.update(subtype=sub, lv_edvi=float(edvi), lv_ef=float(ef), wall_ed_mm=w,
             contractility=seg_array(uniform(rng, 1.1, 1.3) if sub != "end_stage" else 0.8),
             base_descent_mm=uniform(rng, 8, 12), la_scale=uniform(rng, 1.2, 1.6),
             sam=sub == "classic" and rng.random() < 0.5)
    if sub == "apical" and rng.random() < 0.2:
        d["aneurysm"] = True
    if sub == "end_stage" or rng.random() < 0.55:
        _hcm_lge(rng, d, sub == "end_stage")


def _hcm_lge(rng, d, extensive: bool):
    """Patchy mid-wall blobs at the RV insertion points plus patches in the thickest segments."""
    d["lge"].append(LGEPatch("rv_insertion", (2, 3, 8, 9)[: int(rng.integers(1, 5))], (0.3, 0.7),
                             uniform(rng, 0.5, 0.9), uniform(rng, 0.5, 0.9)))
    thick = tuple(int(s) + 1 for s in np.argsort(d["wall_ed_mm"])[::-1][: int(rng.integers(1, 4))])
    depth = (0.1, 0.95) if extensive else (0.3, 0.7)
    d["lge"].append(LGEPatch("midwall", tuple(sorted(thick)), depth, uniform(rng, 0.5, 0.9),
                             uniform(rng, 0.4, 0.9)))


def _amyloid(rng, d, sex):
    r = rng.random()
    sub = "subendo" if r < 0.42 else ("transmural" if r < 0.66 else "no_lge")
    edvi, ef = edvi_ef(rng, (71, 10, 45, 95), (54, 8, 35, 70), 0.0)
    wall = (truncated_normal(rng, 13.2, 1.0, 11, 15) if sub == "no_lge"
            else truncated_normal(rng, 13.6, 1.8, 11.5, 20))
    w = wall_map(rng, wall)
    if rng.random() < 0.3:                        # asymmetric septal ATTR (reverse-curve septum)
        w[_idx(SEPTAL[:4])] = np.minimum(w[_idx(SEPTAL[:4])] * uniform(rng, 1.2, 1.35), 23.0)
    d.update(subtype=sub, lv_edvi=edvi, lv_ef=ef, wall_ed_mm=w,
             base_descent_mm=uniform(rng, 4, 8), rv_wall_mm=uniform(rng, 5, 8),
             rv_ef=truncated_normal(rng, 56, 6, 40, 68),
             la_scale=uniform(rng, 1.3, 1.7), ra_scale=uniform(rng, 1.3, 1.6), atrial_wall_mm=uniform(rng, 4, 7),
             hr_bpm=truncated_normal(rng, 75, 10, 50, 95))
    d["t1_myo_post"] = min(uniform(rng, 250, 330), d["t1_blood_post"] - uniform(rng, 5, 40))
    if rng.random() < (0.30 if sub != "no_lge" else 0.10):
        d["pericardial_effusion_mm"] = uniform(rng, 3, 12)
    if rng.random() < 0.30:
        d["pleural_effusion_mm"] = (uniform(rng, 5, 25), uniform(rng, 0, 20))
    d["nulling_abnormal"] = sub != "no_lge" or rng.random() < 0.7   # T1 is short in all amyloid
    if sub != "no_lge":
        d["lge"].append(_amyloid_lge(rng, sub == "transmural"))


def _amyloid_lge(rng, transmural: bool) -> LGEPatch:
    """Global subendocardial band (depth 20-60 %) or transmural at lower contrast; early subendo
    disease (35 %) spares the apex and some segments. RV/atria involved in half."""
    segs = tuple(range(1, 18))
    if not transmural and rng.random() < 0.45:
        segs = tuple(sorted(rng.choice(np.arange(1, 13), size=int(rng.integers(5, 11)),
                                       replace=False).tolist()))
    depth = (0.0, 1.0) if transmural else (0.0, uniform(rng, 0.2, 0.6))
    strength = uniform(rng, 0.4, 0.65) if transmural else uniform(rng, 0.45, 0.85)
    both = bool(rng.random() < 0.5)
    return LGEPatch("diffuse", segs, depth, strength, uniform(rng, 0, 0.5), rv=both, atria=both)


def _rv(rng, d, sex):
    r = rng.random()
    sub = "volume" if r < 0.40 else ("PH" if r < 0.75 else "ARVC")
    big = (140, 18, 110, 180) if sex == "M" else (130, 18, 100, 170)
    if sub == "volume":
        rv_edvi, rv_ef = truncated_normal(rng, *big), truncated_normal(rng, 50, 5, 42, 60)
    elif sub == "PH":
        rv_edvi, rv_ef = truncated_normal(rng, big[0] - 15, 18, 85, big[3]), truncated_normal(rng, 33, 6, 20, 42)
        d.update(rv_wall_mm=uniform(rng, 5, 8), septal_flattening=uniform(rng, 0.4, 1.0))
    else:
        rv_edvi, rv_ef = truncated_normal(rng, *big), truncated_normal(rng, 33, 5, 20, 42)
        d["rv_bulge"] = True
    lv = (82, 10, 62, 102) if sub == "volume" else (75, 9, 60, 95)   # shunt/PR: LV loaded too
    edvi, ef = edvi_ef(rng, lv, (60, 5, 50, 70), 0.0)
    d.update(subtype=sub, rv_edvi=rv_edvi, rv_ef=rv_ef, lv_edvi=edvi, lv_ef=ef,
             ra_scale=uniform(rng, 1.2, 1.6))
    if sub == "PH" and rng.random() < 0.6 or sub != "PH" and rng.random() < 0.1:
        d["lge"].append(LGEPatch("rv_insertion", (2, 3, 8, 9), (0.3, 0.7), uniform(rng, 0.4, 0.8),
                                 uniform(rng, 0.3, 0.8)))


def _htn_lvh(rng, d, sex):
    wall = truncated_normal(rng, 13.2, 1.5, 11, 16.5)
    w = wall_map(rng, wall)
    sigmoid = rng.random() < 0.30                 # basal septal bulge of the elderly: ratio 1.3-1.5
    w[_idx(SEPTAL)] *= uniform(rng, 1.0, 1.25)
    if sigmoid:
        w[_idx((2, 3))] = min(wall * uniform(rng, 1.3, 1.5), 16.0)
    d.update(subtype="sigmoid_septum" if sigmoid else "concentric", wall_ed_mm=w,
             lv_edvi=truncated_normal(rng, 66, 9, 48, 90), la_scale=uniform(rng, 1.05, 1.3),
             aortic_root_mm=uniform(rng, 30, 38))
    if rng.random() < 0.10:
        d["lge"].append(_dot(rng))


def _other(rng, d, sex):
    edvi, ef = edvi_ef(rng, (78, 11, 55, 105), (58, 6, 48, 70), 0.0)
    d.update(lv_edvi=edvi, lv_ef=ef, wall_ed_mm=wall_map(rng, truncated_normal(rng, 8.5, 1.2, 6, 11)))
    sub = str(rng.choice(list(OTHER_SUBTYPES), p=list(OTHER_SUBTYPES.values())))
    d["subtype"] = sub
    if sub == "myocarditis":
        _myocarditis(rng, d)
    elif sub == "sarcoid":
        _sarcoid(rng, d)
    elif sub == "effusion":
        d["pericardial_effusion_mm"] = uniform(rng, 4, 18)
    elif sub == "aortic_dilation":
        d["aortic_root_mm"] = uniform(rng, 40, 50)
    elif sub == "aortic_stenosis":
        _aortic_stenosis(rng, d)
    else:                                         # mitral regurgitation: volume-loaded LV
        edvi, ef = edvi_ef(rng, (100, 10, 85, 130), (58, 5, 50, 68), 0.0)
        if rng.random() < 0.7:                    # decompensated regurgitation: a DCM mimic, no LGE
            edvi, ef = edvi_ef(rng, (128, 18, 100, 175), (33, 7, 18, 52), -0.5)
        d.update(lv_edvi=edvi, lv_ef=ef, la_scale=uniform(rng, 1.2, 1.6))
        if rng.random() < 0.8:                    # tricuspid regurgitation: volume-loaded RV
            d.update(subtype="valve_tr", lv_edvi=truncated_normal(rng, 80, 10, 60, 100),
                     rv_edvi=truncated_normal(rng, 125, 15, 95, 160), rv_ef=truncated_normal(rng, 45, 8, 30, 60),
                     ra_scale=uniform(rng, 1.2, 1.5))


OTHER_SUBTYPES = {"myocarditis": 0.24, "sarcoid": 0.09, "effusion": 0.06, "aortic_dilation": 0.06,
                  "valve": 0.29, "aortic_stenosis": 0.26}


def _aortic_stenosis(rng, d):
    """Pressure-loaded LV: concentric 11-16 mm, patchy LGE in 40 % (an amyloid/HCM/ICM mimic)."""
    wall = truncated_normal(rng, 14.0, 2.0, 11, 18)
    d.update(wall_ed_mm=wall_map(rng, wall), la_scale=uniform(rng, 1.1, 1.4),
             lv_ef=truncated_normal(rng, 55, 8, 38, 70), lv_edvi=truncated_normal(rng, 68, 10, 50, 95))
    if rng.random() < 0.7:
        segs = tuple(sorted(rng.choice(np.arange(1, 18), size=int(rng.integers(3, 17)),
                                       replace=False).tolist()))
        pattern = "subendo" if rng.random() < 0.6 else "midwall"
        d["lge"].append(LGEPatch(pattern, segs, (0.0 if pattern == "subendo" else 0.3, 0.6),
                                 uniform(rng, 0.4, 0.8), 0.7))


def _myocarditis(rng, d):
    """Subepicardial lateral LGE (+ septal mid-wall in 30 %); EF mildly reduced in 30 %."""
    septal_only = rng.random() < 0.5              # septal mid-wall pattern only: a DCM mimic
    if not septal_only:
        segs = tuple(sorted(rng.choice([5, 6, 11, 12, 16], size=int(rng.integers(1, 4)),
                                       replace=False).tolist()))
        d["lge"].append(LGEPatch("subepi", segs, (uniform(rng, 0.5, 0.8), 1.0), uniform(rng, 0.5, 0.9),
                                 uniform(rng, 0.2, 0.7)))
    if septal_only or rng.random() < 0.3:
        d["lge"].append(LGEPatch("midwall", (8, 9), (0.4, 0.6), uniform(rng, 0.4, 0.8), 0.5))
    if rng.random() < 0.7:                        # post-myocarditis dilated, dysfunctional LV
        edvi, ef = edvi_ef(rng, (120, 18, 85, 165), (33, 8, 18, 52), -0.5)
        d.update(lv_edvi=edvi, lv_ef=ef, sphericity=uniform(rng, 0.3, 0.8))


def _sarcoid(rng, d):
    """Sarcoid-like patchy LGE (basal septum + one other wall, mid-wall to transmural): an ICM mimic."""
    if rng.random() < 0.3:
        d["lge"].append(LGEPatch("midwall", (2, 3, 8), (0.3, 0.7), uniform(rng, 0.5, 0.9), 0.7))
    segs = tuple(sorted(rng.choice([4, 5, 6, 10, 11, 12, 15, 16], size=int(rng.integers(2, 5)),
                                   replace=False).tolist()))
    d["lge"].append(LGEPatch(str(rng.choice(["transmural", "subepi", "subendo"])), segs,
                             (uniform(rng, 0.0, 0.3), 1.0), uniform(rng, 0.5, 0.9), 0.6))
    edvi, ef = edvi_ef(rng, (118, 18, 80, 165), (33, 8, 18, 58), -0.5)
    d.update(lv_edvi=edvi, lv_ef=ef)


SAMPLERS = {
    "NORMAL": _normal, "ATHLETE": _athlete, "NICM": _nicm, "ICM": _icm, "HCM": _hcm,
    "AMYLOID": _amyloid, "RV": _rv, "HTN_LVH": _htn_lvh, "OTHER": _other,
}

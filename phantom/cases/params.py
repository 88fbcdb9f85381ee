"""Latent sampling: one `Latent` (physiology, class-bearing) per study, following phantom.md §1.2.

Every class has its own small sampler (phantom.cases.classes.SAMPLERS, label -> function) that
overrides a shared normal baseline built here. Class ranges overlap on purpose (§1.2 notes, §5.4
hard negatives) and were calibrated so that the measurement oracle of `phantom.audit` lands near
the CMR-CLIP anchors (§5.6), not at 1.0.

ACDC consistency (phantom.cases.rules): a study is drawn "clear" (its targets meet the class rule
with a measurement-error slack) with probability 1 - BORDERLINE_RATE, else "borderline" (the draw
is repeated until it does NOT clear the slack; half of those are near-cut cases whose targets
still meet the plain rule, half tails of the wide §1.2 ranges, e.g. NICM with EF 40-48). `Latent.borderline` is exactly "fails the slack test", so every study
whose measured values break its class rule is flagged borderline (hedged report, §5.3).

Design choices (documented because the shortcut audit depends on them):
  * sex, age, height and weight are drawn from ONE distribution for every class, so PatientSex,
    PatientAge, PatientSize and PatientWeight in the DICOM headers carry no class information;
  * heart rate is physiology (athletes 40-60 bpm) and does leak into cardiac-timing tags; the header
    audit leaves those tags out (audit.archive.PHYSIOLOGY_TAGS);
  * post-contrast T1 values are 1.5 T values; at 3 T the renderer multiplies them by
    T1_POST_3T_FACTOR (sample_acquisition picks TI with the same factor).
The acquisition sampler (class-independent by construction) lives in phantom.cases.acquisition and
is re-exported here.
"""
from __future__ import annotations

import numpy as np

from cmr_search.phantom.cases.acquisition import T1_POST_3T_FACTOR, sample_acquisition  # noqa: F401
from cmr_search.phantom.cases.classes import (  # noqa: F401  (SEPTAL/LATERAL re-exported for the audit)
    LATERAL, SAMPLERS, SEPTAL, edvi_ef, seg_array, wall_map)
from cmr_search.phantom.cases.latent import CLASS_PRIOR, CLASSES, Latent, LGEPatch
from cmr_search.phantom.cases.rules import class_rule_holds, rule_slack, targets_as_measured
from cmr_search.phantom.randomness import truncated_normal, uniform

INCIDENTALS = ("aortic_dilation", "hepatic_cyst", "hiatal_hernia", "mitral_regurgitation",
               "pleural_effusion", "bicuspid_aortic_valve", "trace_pericardial_fluid")
INCIDENTAL_RATE = 0.20             # §4.2: 15-25 % of studies carry an incidental finding
BORDERLINE_RATE = 0.05             # deliberate near-cut / tail cases per class (§5.3, cases.rules)
NEAR_CUT_SHARE = 0.5               # of the borderline draws: targets inside the cut, within the slack
MAX_REDRAWS = 60


# --- shared baseline -------------------------------------------------------------------------------
def sample_label(rng) -> str:
    """Primary class drawn from latent.CLASS_PRIOR."""
    p = np.array([CLASS_PRIOR[c] for c in CLASSES])
    return CLASSES[int(rng.choice(len(CLASSES), p=p / p.sum()))]


def _demographics(rng) -> dict:
    """Class-independent sex/age/size (see module docstring); BSA by Mosteller."""
    sex = "M" if rng.random() < 0.55 else "F"
    age = int(round(truncated_normal(rng, 55, 15, 18, 88)))
    h = truncated_normal(rng, 176, 7, 155, 200) if sex == "M" else truncated_normal(rng, 163, 6.5, 145, 185)
    w = truncated_normal(rng, 85, 14, 50, 140) if sex == "M" else truncated_normal(rng, 70, 13, 42, 125)
    return dict(sex=sex, age=age, height_cm=round(h, 1), weight_kg=round(w, 1),
                bsa=round(mosteller_bsa(round(h, 1), round(w, 1)), 3))


def mosteller_bsa(height_cm: float, weight_kg: float) -> float:
    """Body surface area in m²: sqrt(height_cm · weight_kg / 3600)."""
    return float(np.sqrt(height_cm * weight_kg / 3600.0))


def _normal_base(rng, sex: str) -> dict:
    """Every physiological field at a healthy value; class samplers override what they change."""
    edvi, ef = edvi_ef(rng, (76, 9, 60, 100) if sex == "M" else (68, 8, 55, 90),
                        (65, 5, 55, 75), 0.0)
    rv_edvi = truncated_normal(rng, 80 if sex == "M" else 72, 10, 60, 105)
    blood = uniform(rng, 300, 380)
    return dict(
        subtype="normal", hr_bpm=truncated_normal(rng, 68, 10, 50, 95), lv_edvi=edvi, lv_ef=ef,
        wall_ed_mm=wall_map(rng, truncated_normal(rng, 8.0, 1.0, 6.0, 11.0)), contractility=seg_array(1.0),
        sphericity=uniform(rng, 0.0, 0.25), base_descent_mm=uniform(rng, 10, 16), lge=[], territories=(),
        rv_edvi=rv_edvi, rv_ef=truncated_normal(rng, 60, 5, 50, 70), rv_wall_mm=uniform(rng, 3, 5), rv_bulge=False,
        septal_flattening=0.0, la_scale=uniform(rng, 0.9, 1.1), ra_scale=uniform(rng, 0.9, 1.1),
        atrial_wall_mm=uniform(rng, 2, 3), pericardial_effusion_mm=0.0, pleural_effusion_mm=(0.0, 0.0),
        nulling_abnormal=False, sam=False, thrombus=False, aneurysm=False,
        aortic_root_mm=uniform(rng, 27, 36), t1_myo_post=uniform(rng, 440, 500), t1_blood_post=blood,
        t1_scar_post=uniform(rng, 220, 300), incidentals=[],
    )


# --- borderline, confidence, incidentals -----------------------------------------------------------
def _rule_plain(label: str, sex: str, d: dict) -> bool:
    """The class rule holds on the targets, without slack (a near-cut, not a tail, case)."""
    lat = _freeze(0, label, False, "definite", {"sex": sex, **_DUMMY_DEMO}, d)
    return class_rule_holds(label, sex, targets_as_measured(lat), lat)


def _rule_clear(label: str, sex: str, d: dict) -> bool:
    """The class rule holds on the targets with the measurement-error slack (cases.rules)."""
    lat = _freeze(0, label, False, "definite", {"sex": sex, **_DUMMY_DEMO}, d)
    return rule_slack(label, sex, targets_as_measured(lat), lat)


_DUMMY_DEMO = dict(age=50, height_cm=170.0, weight_kg=70.0, bsa=1.82)


def _confidence(rng, borderline: bool) -> str:
    if borderline:
        return "possible" if rng.random() < 0.6 else "probable"
    return "definite" if rng.random() < 0.8 else "probable"


def _incidentals(rng, d):
    """15-25 % of studies get one incidental; some adjust the matching physiology."""
    if rng.random() >= INCIDENTAL_RATE:
        return
    name = str(rng.choice(INCIDENTALS))
    d["incidentals"].append(name)
    if name == "aortic_dilation":
        d["aortic_root_mm"] = max(d["aortic_root_mm"], uniform(rng, 38, 44))
    elif name == "pleural_effusion":
        d["pleural_effusion_mm"] = (max(d["pleural_effusion_mm"][0], uniform(rng, 4, 10)),
                                    d["pleural_effusion_mm"][1])
    elif name == "trace_pericardial_fluid":
        d["pericardial_effusion_mm"] = max(d["pericardial_effusion_mm"], uniform(rng, 1, 3))


def sample_latent(rng, study_index: int, label: str | None = None) -> Latent:
    """One study's physiology; label None draws it from CLASS_PRIOR."""
    label = sample_label(rng) if label is None else label
    if label not in SAMPLERS:
        raise ValueError(f"unknown class {label!r}; choose one of {', '.join(CLASSES)}")
    demo = _demographics(rng)
    d = _class_draw(rng, label, demo["sex"], want_clear=rng.random() >= BORDERLINE_RATE)
    _incidentals(rng, d)
    borderline = not _rule_clear(label, demo["sex"], d)
    return _freeze(study_index, label, borderline, _confidence(rng, borderline), demo, d)


def _class_draw(rng, label: str, sex: str, want_clear: bool) -> dict:
    """Class sampler on a fresh healthy baseline, redrawn until the class rule is clear of its
    cut-points (want_clear) or, for the deliberate borderline share, until it is NOT (a near-cut
    or tail case of the wide §1.2 ranges). Gives up after MAX_REDRAWS (last draw kept)."""
    near_cut = not want_clear and rng.random() < NEAR_CUT_SHARE
    for _ in range(MAX_REDRAWS):
        d = _normal_base(rng, sex)
        SAMPLERS[label](rng, d, sex)
        if _rule_clear(label, sex, d) == want_clear and (not near_cut or _rule_plain(label, sex, d)):
            break
    return d


def _freeze(study_index, label, borderline, conf, demo, d) -> Latent:
    """Plain-number Latent (JSON-ready): arrays to tuples of rounded floats."""
    r2 = lambda x: round(float(x), 2)  # noqa: E731
    d = dict(d)
    for k in ("wall_ed_mm", "contractility"):
        d[k] = tuple(r2(x) for x in d[k])
    for k in ("lv_edvi", "lv_ef", "sphericity", "base_descent_mm", "rv_edvi", "rv_ef", "rv_wall_mm",
              "septal_flattening", "la_scale", "ra_scale", "atrial_wall_mm", "hr_bpm",
              "pericardial_effusion_mm", "aortic_root_mm", "t1_myo_post", "t1_blood_post",
              "t1_scar_post"):
        d[k] = r2(d[k])
    d["pleural_effusion_mm"] = tuple(r2(x) for x in d["pleural_effusion_mm"])
    d["lge"] = tuple(LGEPatch(p.pattern, tuple(int(s) for s in p.segments),
                              (r2(p.depth[0]), r2(p.depth[1])), r2(p.strength), r2(p.patchiness),
                              p.rv, p.atria) for p in d["lge"])
    d["incidentals"] = tuple(d["incidentals"])
    d["sam"], d["thrombus"], d["aneurysm"] = bool(d["sam"]), bool(d["thrombus"]), bool(d["aneurysm"])
    return Latent(study_index=study_index, label=label, borderline=borderline, dx_confidence=conf,
                  **demo, **d)

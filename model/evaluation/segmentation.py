"""Segmentation checks against experts' masks: Dice per structure, ejection-fraction error, and the
5-group probe on measurements (bench/real_measure.py and the real-data floor tests use these).

- Dice(A, B) = 2 |A n B| / (|A| + |B|) per structure of LABELS, over a stack (3-D Dice, as the ACDC
  challenge scores a phase); NaN when both are empty (left out of means).
- EF from areas: (sum ED areas - sum ES areas) / sum ED areas x 100 over the same slices (the slice
  spacing cancels), for comparing a segmenter with contours drawn on some slices only.
- Whole sets: evaluate_acdc (Dice per structure and phase, LVEF/RVEF error, probe on the segmenter's and
  on the experts' measurements) and evaluate_sunnybrook (Dice on every contoured image, LVEF from contours).
- Group probe: scikit-learn LogisticRegression on standardised measurement vectors
  [lvedv, lvesv, lvef, lv_mass, max_wall, rvedv, rvesv, rvef] (missing values: the training folds'
  median), stratified k-fold, repeated over seeds; accuracy mean +- std over the seeds.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..segmentation.measure import measure_cine
from .metrics import _nanmean, _nanstd
from .probes import linear_probe

STRUCTURES = {"lv_cavity": 3, "lv_myocardium": 2, "rv_cavity": 1}
PROBE_FEATURES = ("lvedv", "lvesv", "lvef", "lv_mass", "max_wall", "rvedv", "rvesv", "rvef")


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean arrays; NaN when both are empty."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    total = int(pred.sum()) + int(truth.sum())
    return float("nan") if total == 0 else 2.0 * float((pred & truth).sum()) / total


def dice_per_structure(pred: np.ndarray, truth: np.ndarray, structures: dict[str, int] = STRUCTURES) -> dict[str, float]:
    """Label arrays of one shape -> {structure: Dice}."""
    if np.shape(pred) != np.shape(truth):
        raise ValueError(f"prediction {np.shape(pred)} and truth {np.shape(truth)} differ in shape")
    return {name: dice(np.asarray(pred) == lab, np.asarray(truth) == lab) for name, lab in structures.items()}


def ef_from_areas(ed_areas: Sequence[float], es_areas: Sequence[float]) -> float | None:
    """EF (%) from per-slice cavity areas at ED and ES over the same slices; None without an ED area."""
    ed, es = float(np.sum(ed_areas)), float(np.sum(es_areas))
    return None if ed <= 0 else (ed - es) / ed * 100.0


def summary(values: Sequence[float | None]) -> dict:
    """mean, std, median, n of the finite values (None and NaN left out)."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], float)
    if not len(v):
        return {"mean": None, "std": None, "median": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)), "n": int(len(v))}


def abs_errors(pred: Sequence[float | None], truth: Sequence[float | None]) -> list[float | None]:
    """|pred - truth| per item; None where either is missing."""
    return [None if p is None or t is None else abs(float(p) - float(t)) for p, t in zip(pred, truth)]


def measurement_matrix(measurements: Sequence[dict], features: Sequence[str] = PROBE_FEATURES) -> np.ndarray:
    """Measurement dicts -> (N, F) float array, NaN for missing values."""
    return np.array([[np.nan if m.get(f) is None else float(m[f]) for f in features] for m in measurements], float)


def _fill_missing(x: np.ndarray) -> np.ndarray:
    """NaN -> the column median (a column with no value -> 0); the probe standardises per fold after."""
    x = x.copy()
    med = np.nanmedian(np.where(np.isnan(x).all(0), 0.0, x), axis=0) if len(x) else np.zeros(x.shape[1])
    rows, cols = np.nonzero(np.isnan(x))
    x[rows, cols] = np.nan_to_num(med[cols])
    return x


def group_probe(measurements: Sequence[dict], groups: Sequence[str], folds: int = 4, seeds: int = 10,
                features: Sequence[str] = PROBE_FEATURES) -> dict:
    """Stratified k-fold logistic-regression probe of `groups` from measurement vectors, repeated over
    `seeds` fold shuffles -> {accuracy: {mean, std}, per_seed, n, folds, chance, features}."""
    x = _fill_missing(measurement_matrix(measurements, features))
    classes = sorted(set(groups))
    accs = []
    for seed in range(seeds):
        r = linear_probe(x, np.asarray(groups, object), classes, folds=folds, seed=seed)
        accs.append(r.get("accuracy", float("nan")))
    return {"accuracy": {"mean": _nanmean(accs), "std": _nanstd(accs)}, "per_seed": [float(a) for a in accs],
            "n": len(groups), "folds": folds, "chance": 1.0 / max(1, len(classes)), "features": list(features)}


# ---- whole reference sets ------------------------------------------------------------------------
# Cases are duck-typed (indexer.reference_sets.ReferenceCase: images, masks, spacing, slice_mm, group,
# ed_es, height_cm, weight_kg, contours); model/ reads no files of its own.
PHASES = ("ED", "ES")


def _measure(masks, case) -> dict:
    return measure_cine(masks, case.spacing, case.slice_mm, height_cm=case.height_cm, weight_kg=case.weight_kg,
                        ed_es=case.ed_es)


def evaluate_acdc(cases, segment, probe_seeds: int = 10) -> dict:
    """ACDC cases (T = 2: ED, ES) and `segment((S, T, H, W) images, spacing) -> masks` -> Dice per structure
    and phase (mean +- std, per group), LVEF/RVEF absolute error against the experts' masks, and the
    group probe on measurements from the segmenter and from the experts' masks (the ceiling)."""
    rows, pred_m, true_m = [], [], []
    for case in cases:
        pred = segment(case.images, case.spacing)
        for t, phase in enumerate(PHASES):
            rows.append({"case": case.name, "group": case.group, "phase": phase,
                         **dice_per_structure(pred[:, t], case.masks[:, t])})
        pred_m.append(_measure(pred, case))
        true_m.append(_measure(case.masks, case))
    dice_out = {}
    for name in STRUCTURES:
        dice_out[name] = {"all": summary([r[name] for r in rows]),
                          **{p: summary([r[name] for r in rows if r["phase"] == p]) for p in PHASES},
                          "by_group": {g: summary([r[name] for r in rows if r["group"] == g])["mean"]
                                       for g in sorted({r["group"] for r in rows})}}
    groups = [c.group for c in cases]
    ef = {k: summary(abs_errors([m[k] for m in pred_m], [m[k] for m in true_m])) for k in ("lvef", "rvef")}
    return {"n": len(cases), "dice": dice_out, "ef_abs_error": ef,
            "probe_segmenter": group_probe(pred_m, groups, seeds=probe_seeds),
            "probe_expert_masks": group_probe(true_m, groups, seeds=probe_seeds),
            "per_case": [{"case": c.name, "group": c.group,
                          "lvef": p["lvef"], "lvef_expert": e["lvef"], "rvef": p["rvef"], "rvef_expert": e["rvef"],
                          "seg_quality": p["seg_quality"], "seg_flags": p["seg_flags"]}
                         for c, p, e in zip(cases, pred_m, true_m)],
            "per_image": rows}


def _contour_ef(contours, areas) -> tuple[float | None, float | None, int]:
    """EF from the experts' cavity areas and from `areas` ((slice, phase) -> segmenter cavity area), over
    the slices contoured at both ED (the phase with epicardial contours, else the larger cavity) and ES."""
    by_phase: dict[int, dict[int, float]] = {}
    for c in contours:
        by_phase.setdefault(c["phase"], {})[c["slice"]] = float(c["cavity"].sum())
    if len(by_phase) < 2:
        return None, None, 0
    with_o = {c["phase"] for c in contours if c["myocardium"] is not None}
    phases = sorted(by_phase, key=lambda p: (p in with_o, sum(by_phase[p].values())), reverse=True)
    ed, es = phases[0], phases[-1]
    common = sorted(set(by_phase[ed]) & set(by_phase[es]))
    expert = ef_from_areas([by_phase[ed][s] for s in common], [by_phase[es][s] for s in common])
    mine = ef_from_areas([areas[(s, ed)] for s in common], [areas[(s, es)] for s in common])
    return expert, mine, len(common)


def evaluate_sunnybrook(cases, segment, whole_cine: bool = True) -> dict:
    """Sunnybrook cases with contours -> Dice of LV cavity and myocardium on every contoured image, LVEF
    from the contours vs the segmenter on the same slices and phases, and (whole_cine) the segmenter's own
    measure_cine LVEF of the whole cine. whole_cine=False segments the contoured images only (faster)."""
    rows, per_case = [], []
    for case in cases:
        if whole_cine:
            pred = segment(case.images, case.spacing)
            masks = {(c["slice"], c["phase"]): pred[c["slice"], c["phase"]] for c in case.contours}
        else:
            imgs = np.stack([case.images[c["slice"], c["phase"]] for c in case.contours])[:, None]
            pred_c = segment(imgs, case.spacing)[:, 0]
            masks = {(c["slice"], c["phase"]): m for c, m in zip(case.contours, pred_c)}
        for c in case.contours:
            m = masks[(c["slice"], c["phase"])]
            rows.append({"case": case.name, "slice": c["slice"], "phase": c["phase"],
                         "lv_cavity": dice(m == 3, c["cavity"]),
                         "lv_myocardium": None if c["myocardium"] is None else dice(m == 2, c["myocardium"])})
        expert, mine, n = _contour_ef(case.contours, {k: float((v == 3).sum()) for k, v in masks.items()})
        entry = {"case": case.name, "lvef_contours": expert, "lvef_segmenter_same_slices": mine, "slices": n}
        if whole_cine:
            entry.update({k: _measure(pred, case)[k] for k in ("lvef", "lvedv", "seg_quality", "seg_flags")})
        per_case.append(entry)
    return {"n_images": len(rows),
            "dice": {k: summary([r[k] for r in rows]) for k in ("lv_cavity", "lv_myocardium")},
            "lvef_abs_error_same_slices": summary(abs_errors([p["lvef_segmenter_same_slices"] for p in per_case],
                                                             [p["lvef_contours"] for p in per_case])),
            "lvef_abs_error_whole_cine": summary(abs_errors([p.get("lvef") for p in per_case],
                                                            [p["lvef_contours"] for p in per_case])),
            "per_case": per_case, "per_image": rows}

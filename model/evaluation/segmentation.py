"""Segmentation checks against experts' masks: Dice per structure, ejection-fraction error, and the
5-group probe on measurements (bench/real_measure.py and the real-data floor tests use these).

- Dice(A, B) = 2 |A n B| / (|A| + |B|) per structure of LABELS, over a stack (3-D Dice, as the ACDC
  challenge scores a phase); NaN when both are empty (left out of means).
- EF from areas: (sum ED areas - sum ES areas) / sum ED areas x 100 over the same slices (the slice
  spacing cancels), for comparing a segmenter with contours drawn on some slices only.
- Group probe: scikit-learn LogisticRegression on standardised measurement vectors
  [lvedv, lvesv, lvef, lv_mass, max_wall, rvedv, rvesv, rvef] (missing values: the training folds'
  median), stratified k-fold, repeated over seeds; accuracy mean +- std over the seeds.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

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


def group_probe(measurements: Sequence[dict], groups: Sequence[str], folds: int = 4, seeds: int = 20,
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

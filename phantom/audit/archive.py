"""Benchmark-honesty audit of a generated archive (phantom.md §5.5); `cmr synth audit DIR` prints it.

Four tests, each a table of rows {test, class, auc, ci_lo, ci_hi, n_pos, n, target, ok}:
  header     DICOM headers only (no pixels)        -> per-class AUC near chance
  intensity  global pixel statistics of cine/LGE   -> well below the anchors (AUC < 0.70)
  oracle     measured values + TRUE LGE pattern    -> near the CMR-CLIP anchors, never 1.0
  keywords   report text, train vs test wording    -> test accuracy below train accuracy
Classifiers are the L2 logistic regression of phantom.audit.stats with 5-fold out-of-fold scores.
Before the full generator exists, `oracle_auc_from_latents` runs the oracle on sampled latents
with reader-like noise (the calibration stand-in for params.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cmr_search.phantom.audit.features import header_features, intensity_features, keyword_accuracy
from cmr_search.phantom.audit.stats import one_vs_rest
from cmr_search.phantom.cases.latent import CLASSES, Latent, latent_from_dict
from cmr_search.phantom.cases.params import LATERAL, SEPTAL, sample_latent
from cmr_search.phantom.cases.rules import targets_as_measured

# Depth patterns a reader names. Amyloid's "diffuse" patch counts as subendo or transmural by its
# depth: its global extent shows in lge_percent, as it would for a reader (phantom.md §1.2 notes).
LGE_PATTERNS = ("subendo", "transmural", "midwall", "subepi", "rv_insertion", "dot")
ORACLE_FIELDS = ("lv_edvi", "lv_ef", "max_wall_mm", "septal_lateral_ratio", "rv_edvi", "rv_ef",
                 "pericardial_effusion_mm", "lge_percent")
# One-vs-rest AUC windows of the oracle (the targets, phantom.md §5.6): HCM ~0.99,
# amyloid ~0.97, ICM/NICM 0.93-0.95; never 1.0.
ORACLE_TARGETS = {"HCM": (0.975, 0.995), "AMYLOID": (0.955, 0.985), "ICM": (0.92, 0.96),
                  "NICM": (0.92, 0.96)}
ORACLE_MAX_OTHER = 0.998          # any other class: must not be (nearly) perfectly separable
HEADER_MAX_AUC = 0.65
INTENSITY_MAX_AUC = 0.70


# --- oracle --------------------------------------------------------------------------------------
def lge_percent_estimate(lat: Latent) -> float:
    """Rough % of LV mass with fibrosis > 0.5 (measure.py's lge_percent) from the LGE patches;
    constants fitted on a real tiny archive (correlation 0.8-0.98 per class)."""
    total = 0.0
    for p in lat.lge:
        frac = len(p.segments) / 17 * (p.depth[1] - p.depth[0]) * (1 - 0.6 * p.patchiness)
        frac *= 0.15 if p.pattern in ("dot", "rv_insertion") else 0.7
        total += frac * float(np.clip((p.strength - 0.45) / 0.2, 0.0, 1.0))
    return float(min(100.0, 100 * total))


def measured_from_latent(lat: Latent, rng: np.random.Generator) -> dict:
    """Reader-like measurements of the latent targets with measure.py's errors on real renders
    (tiny archive, seed 11): EF ±1.7 points, volumes ±2.5 %, walls ±0.15 mm; the max wall is over
    the basal/mid segments 1-12, which is all measure.py contours."""
    t = targets_as_measured(lat)
    w = np.asarray(lat.wall_ed_mm[:12]) + rng.normal(0, 0.15, 12)              # (12,)
    sept, lat_w = w[[s - 1 for s in SEPTAL[:4]]].max(), w[[s - 1 for s in LATERAL[:4]]].max()
    return {
        "lv_edvi": t["lv_edvi"] * rng.normal(1, 0.025), "lv_ef": t["lv_ef"] + rng.normal(0, 1.7),
        "max_wall_mm": float(w.max()), "septal_lateral_ratio": float(sept / max(lat_w, 1.0)),
        "rv_edvi": t["rv_edvi"] * rng.normal(1, 0.025), "rv_ef": t["rv_ef"] + rng.normal(0, 1.4),
        "pericardial_effusion_mm": max(0.0, lat.pericardial_effusion_mm + rng.normal(0, 0.5)),
        "lge_percent": lge_percent_estimate(lat) * rng.normal(1, 0.2),
    }


def reader_pattern(p) -> str:
    """The depth pattern a reader would name for one LGE patch ("diffuse" -> subendo/transmural)."""
    if p.pattern == "diffuse":
        return "transmural" if p.depth[1] - p.depth[0] >= 0.75 else "subendo"
    return p.pattern


def oracle_vector(measured: dict, lat: Latent) -> np.ndarray:
    """(len(ORACLE_FIELDS) + len(LGE_PATTERNS),) measured values plus the true LGE pattern multi-hot."""
    meas = [float(measured.get(k) or 0.0) for k in ORACLE_FIELDS]
    seen = {reader_pattern(p) for p in lat.lge}
    hot = [float(name in seen) for name in LGE_PATTERNS]
    return np.array(meas + hot)


def _oracle_rows(x: np.ndarray, labels: np.ndarray, seed: int) -> list[dict]:
    rows = []
    for r in one_vs_rest(x, labels, CLASSES, seed=seed):
        lo, hi = ORACLE_TARGETS.get(r["cls"], (0.0, ORACLE_MAX_OTHER))
        if r["cls"] in ORACLE_TARGETS:   # 300 studies hold 6-50 positives per class: the bootstrap
            ok = bool(r["ci_lo"] <= hi and r["ci_hi"] >= lo)   # CI must reach the target window
        else:
            ok = bool(r["auc"] < hi)
        rows.append(_row("oracle", r, f"{lo:.2f}-{hi:.3f}", ok))
    return rows


def oracle_auc_from_latents(n: int = 3000, seed: int = 0) -> dict[str, float]:
    """Calibration stand-in: the oracle's out-of-fold AUC per class on n sampled latents."""
    rng = np.random.default_rng(seed)
    lats = [sample_latent(rng, i) for i in range(n)]
    x = np.stack([oracle_vector(measured_from_latent(lt, rng), lt) for lt in lats])   # (n, d)
    labels = np.array([lt.label for lt in lats])
    return {r["cls"]: r["auc"] for r in one_vs_rest(x, labels, CLASSES, seed=seed, n_boot=0)}


# --- archive -------------------------------------------------------------------------------------
def _row(test: str, r: dict, target: str, ok: bool) -> dict:
    return dict(test=test, **{"class": r["cls"]}, auc=r["auc"], ci_lo=r["ci_lo"], ci_hi=r["ci_hi"],
                n_pos=r["n_pos"], n=r["n"], target=target, ok=ok)


def load_studies(root: str | Path) -> list[tuple[Path, dict]]:
    """(study folder, study.json dict) for every study under root, sorted by folder name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the archive written by `cmr synth`")
    found = sorted(p.parent for p in root.glob("*/study.json"))
    if not found:
        raise FileNotFoundError(f"no */study.json under {root}; is this a `cmr synth` archive?")
    return [(d, json.loads((d / "study.json").read_text())) for d in found]


def _chance_rows(test: str, x: np.ndarray, labels: np.ndarray, max_auc: float, seed: int,
                 ci_rule: bool) -> list[dict]:
    rows = []
    for r in one_vs_rest(x, labels, CLASSES, seed=seed):
        ok = r["auc"] < max_auc or (ci_rule and r["ci_lo"] <= 0.5 <= r["ci_hi"])
        if np.isnan(r["auc"]):
            ok = True                                               # class absent: nothing to learn
        target = f"<{max_auc:.2f}" + (" or CI∋0.5" if ci_rule else "")
        rows.append(_row(test, r, target, bool(ok)))
    return rows


def audit_archive(root: str | Path, rng_seed: int = 0) -> list[dict]:
    """All four audit tests on an archive folder; rows as described in the module docstring."""
    studies = load_studies(root)
    labels = np.array([s["label"] for _, s in studies])
    rows = _chance_rows("header", np.stack([header_features(d) for d, _ in studies]), labels,
                        HEADER_MAX_AUC, rng_seed, ci_rule=True)
    rows += _chance_rows("intensity", np.stack([intensity_features(d) for d, _ in studies]), labels,
                         INTENSITY_MAX_AUC, rng_seed, ci_rule=False)
    x = np.stack([oracle_vector(s["measured"], latent_from_dict(s["latent"])) for _, s in studies])
    rows += _oracle_rows(x, labels, rng_seed)
    rows += _keyword_rows([s for _, s in studies])
    return rows


def _keyword_rows(studies: list[dict]) -> list[dict]:
    acc_train, acc_test, n_train, n_test = keyword_accuracy(studies)
    ok = bool(np.isnan(acc_test) or acc_test < acc_train)
    nan = float("nan")
    return [dict(test="keywords", **{"class": "train_split"}, auc=acc_train, ci_lo=nan, ci_hi=nan,
                 n_pos=n_train, n=n_train, target="accuracy", ok=True),
            dict(test="keywords", **{"class": "test_split"}, auc=acc_test, ci_lo=nan, ci_hi=nan,
                 n_pos=n_test, n=n_test, target="< train accuracy", ok=ok)]


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of audit rows (keyword rows show accuracy in the auc column)."""
    head = f"{'test':<10} {'class':<12} {'auc':>6} {'95% CI':>13} {'n_pos':>6} {'n':>5}  {'target':<16} ok"
    lines = [head, "-" * len(head)]
    for r in rows:
        ci = "" if np.isnan(r["ci_lo"]) else f"{r['ci_lo']:.2f}-{r['ci_hi']:.2f}"
        auc_s = "  nan" if np.isnan(r["auc"]) else f"{r['auc']:.3f}"
        lines.append(f"{r['test']:<10} {r['class']:<12} {auc_s:>6} {ci:>13} {r['n_pos']:>6} "
                     f"{r['n']:>5}  {r['target']:<16} {'yes' if r['ok'] else 'NO'}")
    n_bad = sum(not r["ok"] for r in rows)
    lines.append(f"{len(rows) - n_bad}/{len(rows)} checks pass")
    return "\n".join(lines)

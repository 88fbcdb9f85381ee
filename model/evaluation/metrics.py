"""Metric functions of the evaluation, plain numpy and scikit-learn, tested on toy inputs: retrieval ranks
and recall@k, ROC AUC, F1, accuracy, Youden's threshold."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

KS = (1, 5, 10)


def ranks_of_targets(sim: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """sim (Q, N) scores, relevant (Q, N) bool -> (Q,) 1-based rank of the best-ranked relevant item
    (ties count against the query: rank = 1 + number of items scoring strictly higher, plus irrelevant
    items with an equal score). Queries without a relevant item get rank inf."""
    sim = np.asarray(sim, np.float64)
    relevant = np.asarray(relevant, bool)
    best = np.where(relevant, sim, -np.inf).max(1, keepdims=True)            # (Q, 1)
    higher = (sim > best).sum(1)
    ties = ((sim == best) & ~relevant).sum(1)
    r = 1.0 + higher + ties
    r[~relevant.any(1)] = np.inf
    return r


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks, float)
    return float(np.mean(ranks <= k)) if len(ranks) else float("nan")


def median_rank(ranks: np.ndarray) -> float:
    return float(np.median(ranks)) if len(ranks) else float("nan")


def retrieval_metrics(sim: np.ndarray, labels: Sequence | None = None) -> dict:
    """sim (N, N) query x item with the true pair on the diagonal -> exact and same-label metrics."""
    n = sim.shape[0]
    out = {"n": n, "exact": _rank_summary(ranks_of_targets(sim, np.eye(n, dtype=bool)))}
    if labels is not None:
        lab = np.asarray([None if x is None else str(x) for x in labels], object)
        known = np.array([x is not None for x in lab])
        if known.any():
            same = (lab[:, None] == lab[None, :]) & known[:, None] & known[None, :]
            out["same_label"] = _rank_summary(ranks_of_targets(sim[known], same[known]))
    return out


def _rank_summary(r: np.ndarray) -> dict:
    d = {f"R@{k}": recall_at_k(r, k) for k in KS}
    d["median_rank"] = median_rank(r)
    return d


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (sklearn.metrics.roc_auc_score: ties count one half); NaN if one class is
    absent."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, np.float64)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, s))

def f1_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Binary F1 of the positive class (0 when there are no true and no predicted positives)."""
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    tp = float((y & pred).sum())
    denom = float(y.sum() + pred.sum())
    return 2 * tp / denom if denom else 0.0


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    y, pred = np.asarray(y), np.asarray(pred)
    return float(np.mean(y == pred)) if len(y) else float("nan")


def macro_f1(y: np.ndarray, pred: np.ndarray, classes: Sequence) -> float:
    return float(np.mean([f1_score(np.asarray(y) == c, np.asarray(pred) == c) for c in classes]))


def youden_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """Threshold t maximising sensitivity + specificity - 1 for the rule score >= t (midpoints between
    distinct scores; the median when one class is absent)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, np.float64)
    if y.all() or not y.any():
        return float(np.median(s)) if len(s) else 0.0
    u = np.unique(s)
    cand = np.concatenate([[u[0] - 1e-9], (u[1:] + u[:-1]) / 2, [u[-1] + 1e-9]])
    pred = s[None, :] >= cand[:, None]                                     # (C, N)
    tpr = (pred & y).sum(1) / y.sum()
    tnr = (~pred & ~y).sum(1) / (~y).sum()
    return float(cand[int(np.argmax(tpr + tnr - 1))])


def binary_metrics(y: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    pred = np.asarray(score) >= threshold
    return {"auc": roc_auc(y, score), "f1": f1_score(y, pred), "accuracy": accuracy(np.asarray(y).astype(bool), pred),
            "threshold": float(threshold), "n": int(len(y)), "positives": int(np.asarray(y).astype(bool).sum())}


def _nanmean(v) -> float:
    v = np.asarray(v, float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _nanstd(v) -> float:
    v = np.asarray(v, float)
    return float(np.nanstd(v)) if np.isfinite(v).any() else float("nan")

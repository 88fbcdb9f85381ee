"""Small statistics kit for the shortcut audit (numpy/scipy only, no sklearn).

L2-regularised logistic regression fitted by Newton/IRLS, the rank-formula AUC, stratified k-fold
out-of-fold scores and a seeded bootstrap CI of the AUC.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) arrays scaled by the train mean/sd; constant columns become 0."""
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd[sd < 1e-12] = 1.0
    return (x_train - mu) / sd, (x_test - mu) / sd


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> np.ndarray:
    """(d+1,) weights (bias last) of an L2-penalised logistic regression; x (n, d), y (n,) in {0,1}.
    Newton/IRLS; the bias is not penalised."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])                       # (n, d+1)
    w = np.zeros(d + 1)
    pen = np.full(d + 1, l2)
    pen[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))     # (n,)
        grad = xb.T @ (p - y) + pen * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def predict_logistic(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(n,) decision scores (log-odds) for x (n, d)."""
    return x @ w[:-1] + w[-1]


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank (Mann-Whitney) formula, ties counted half; nan if one class is empty."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) fold id per sample, each class spread evenly over the k folds."""
    fold = np.empty(len(y), dtype=int)
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = np.arange(len(idx)) % k
    return fold


def oof_scores(x: np.ndarray, y: np.ndarray, k: int = 5, l2: float = 1.0,
               seed: int = 0) -> np.ndarray:
    """(n,) out-of-fold logistic scores for a binary target y (k-fold stratified CV)."""
    fold = stratified_folds(y, k, np.random.default_rng(seed))
    out = np.zeros(len(y))
    for f in range(k):
        tr, te = fold != f, fold == f
        if y[tr].min() == y[tr].max():                          # too few positives to fit
            out[te] = 0.0
            continue
        xtr, xte = standardize(x[tr], x[te])
        out[te] = predict_logistic(fit_logistic(xtr, y[tr].astype(float), l2), xte)
    return out


def bootstrap_auc_ci(y: np.ndarray, score: np.ndarray, n_boot: int = 500, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC (resampling studies, seeded)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        a = auc(y[i], score[i])
        if not np.isnan(a):
            vals.append(a)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def one_vs_rest(x: np.ndarray, labels: np.ndarray, classes, seed: int = 0, l2: float = 1.0,
                n_boot: int = 300) -> list[dict]:
    """Per class: out-of-fold AUC with bootstrap CI. x (n, d), labels (n,) of class names."""
    rows = []
    for c in classes:
        y = (labels == c).astype(int)
        if y.sum() < 2 or y.sum() > len(y) - 2:
            rows.append(dict(cls=c, auc=float("nan"), ci_lo=float("nan"), ci_hi=float("nan"),
                             n_pos=int(y.sum()), n=len(y)))
            continue
        k = int(min(5, y.sum()))
        s = oof_scores(x, y, k=k, l2=l2, seed=seed)
        lo, hi = bootstrap_auc_ci(y, s, n_boot=n_boot, seed=seed)
        rows.append(dict(cls=c, auc=auc(y, s), ci_lo=lo, ci_hi=hi, n_pos=int(y.sum()), n=len(y)))
    return rows

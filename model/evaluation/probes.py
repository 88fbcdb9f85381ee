"""Few-shot prototypes and the linear probe of the evaluation (on scikit-learn's StratifiedKFold and
LogisticRegression), tested on toy clusters."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .metrics import _nanmean, _nanstd, accuracy, f1_score, macro_f1, roc_auc

SHOTS = (1, 2, 4, 8, 16, 32)


# ---- few-shot prototypes -------------------------------------------------------------------------
def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def prototype_scores(support: np.ndarray, support_y: np.ndarray, query: np.ndarray, classes: Sequence) -> np.ndarray:
    """SimpleShot: centre on the support mean, L2-normalise, class prototypes = mean support feature;
    -> (Q, C) scores = minus Euclidean distance to each prototype."""
    mu = support.mean(0, keepdims=True)
    s, q = _l2(support - mu), _l2(query - mu)
    protos = np.stack([s[support_y == c].mean(0) for c in classes])       # (C, D)
    d = np.linalg.norm(q[:, None, :] - protos[None], axis=2)               # (Q, C)
    return -d


def few_shot(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
             classes: Sequence, shots: Sequence[int] = SHOTS, episodes: int = 100, seed: int = 0) -> dict:
    """Prototype classifier over `classes`; per shot count: mean and sd over episodes of accuracy,
    F1 (binary: of classes[1]; else macro) and AUC (binary: score of classes[1]; else macro one-vs-rest).
    Support per class: n_shot train items without replacement (with replacement only when a class has
    fewer than n_shot items, flagged in `short_classes`)."""
    classes = list(classes)
    train_y, test_y = np.asarray(train_y, object), np.asarray(test_y, object)
    pools = {c: np.flatnonzero(train_y == c) for c in classes}
    if len(test_y) == 0:
        return {"skipped": "no evaluated studies"}
    if len(classes) == 2 and not all(len(p) for p in pools.values()):
        return {"skipped": "a class has no reference studies"}
    classes = [c for c in classes if len(pools[c])]              # multi-class: the classes with support
    if len(classes) < 2:
        return {"skipped": "fewer than two classes among the reference studies"}
    out: dict = {"classes": [str(c) for c in classes]}
    for n in shots:
        rng = np.random.default_rng([seed, n])
        acc, f1, auc = [], [], []
        for _ in range(episodes):
            idx = np.concatenate([rng.choice(pools[c], n, replace=len(pools[c]) < n) for c in classes])
            sc = prototype_scores(train_x[idx], train_y[idx], test_x, classes)
            pred = np.asarray(classes, object)[sc.argmax(1)]
            acc.append(accuracy(test_y, pred))
            if len(classes) == 2:
                f1.append(f1_score(test_y == classes[1], pred == classes[1]))
                auc.append(roc_auc(test_y == classes[1], sc[:, 1] - sc[:, 0]))
            else:
                f1.append(macro_f1(test_y, pred, classes))
                auc.append(_nanmean([roc_auc(test_y == c, sc[:, j] - np.delete(sc, j, 1).max(1))
                                       for j, c in enumerate(classes)]))
        out[str(n)] = {m: {"mean": _nanmean(v), "sd": _nanstd(v)}
                       for m, v in (("accuracy", acc), ("f1", f1), ("auc", auc))}
    short = [str(c) for c in classes if len(pools[c]) < max(shots)]
    if short:
        out["short_classes"] = short
    return out


# ---- linear probe --------------------------------------------------------------------------------
def stratified_folds(y: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """(N,) fold id from sklearn's StratifiedKFold (shuffled with `seed`): each class spread evenly over
    the k folds. With fewer studies in every class than k, only as many folds as the largest class has
    studies are used (the others stay empty); a class smaller than k is missing from some folds."""
    y = np.asarray(y, object)
    codes = np.unique(y.astype(str), return_inverse=True)[1].ravel()
    fold = np.zeros(len(y), int)
    n_splits = min(k, int(np.bincount(codes).max())) if len(y) else 0
    if n_splits < 2:
        return fold
    with warnings.catch_warnings():         # "the least populated class has only n members": expected here
        warnings.simplefilter("ignore", UserWarning)
        splits = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), codes)
        for f, (_, test) in enumerate(splits):
            fold[test] = f
    return fold


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-2, iters: int = 1000):
    """Multinomial logistic regression (sklearn LogisticRegression, L-BFGS) minimising the mean
    cross-entropy + l2 * ||W||^2 of a softmax over the n_classes columns (bias not penalised); returns
    predict_proba(x) -> (N, n_classes), zero for classes absent from `y`."""
    y = np.asarray(y, int)
    present = np.unique(y)
    if len(present) == 1:                           # one class only: it is predicted with certainty
        return lambda z: np.eye(n_classes)[np.full(len(z), present[0])]
    # sklearn minimises C * sum(CE) + 0.5 * ||W||^2 (one weight vector per class; for two classes one
    # vector w = w1 - w0, whose softmax-equivalent penalty is l2 * ||w||^2 / 2)
    c = 1.0 / (2 * l2 * len(y)) if len(present) > 2 else 1.0 / (l2 * len(y))
    with warnings.catch_warnings():         # like the earlier fixed-iteration L-BFGS: no warning when cut short
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=c, solver="lbfgs", max_iter=iters, tol=1e-8).fit(x, y)

    def predict(z: np.ndarray) -> np.ndarray:
        out = np.zeros((len(z), n_classes))
        out[:, clf.classes_] = clf.predict_proba(z)
        return out
    return predict


def linear_probe(x: np.ndarray, y: np.ndarray, classes: Sequence, folds: int = 5, seed: int = 0,
                 l2: float = 1e-2) -> dict:
    """Stratified k-fold CV of a logistic regression on standardised features; out-of-fold predictions
    -> accuracy, F1 (binary: of classes[1]; else macro) and AUC (binary; else macro one-vs-rest)."""
    classes = list(classes)
    y = np.asarray(y, object)
    yi = np.array([classes.index(v) for v in y])
    if len(set(yi.tolist())) < 2:
        return {"skipped": "fewer than two classes among the evaluated studies"}
    fold = stratified_folds(y, folds, seed)
    proba = np.zeros((len(y), len(classes)))
    for f in range(folds):
        te, tr = fold == f, fold != f
        if not te.any() or not tr.any():
            continue
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        predict = fit_logistic((x[tr] - mu) / sd, yi[tr], len(classes), l2=l2)
        proba[te] = predict((x[te] - mu) / sd)
    pred = proba.argmax(1)
    if len(classes) == 2:
        f1, auc = f1_score(yi == 1, pred == 1), roc_auc(yi == 1, proba[:, 1])
    else:
        f1 = macro_f1(yi, pred, range(len(classes)))
        auc = _nanmean([roc_auc(yi == j, proba[:, j]) for j in range(len(classes))])
    return {"accuracy": accuracy(yi, pred), "f1": f1, "auc": auc, "n": int(len(y)), "folds": folds}

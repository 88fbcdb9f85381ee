"""Evaluation of a checkpoint on the study cache (architecture.md §4; docs/cmrclip-reference.md §5-6).

    res = evaluate(model, CacheDataset(cache, model.clip_spec), eval_keys=held_out)
    write_markdown(res, "eval.md")

Per wording group of the evaluated studies (report split "train" = in-distribution wording, "test" =
held-out wording; "all" for real caches without ground truth), side by side:
- retrieval study->report and report->study: R@1/5/10 and median rank, for the exact pair and for
  same-diagnosis matches (a hit is any item whose label equals the query's; rank = first such item);
- zero-shot per diagnosis (model.prompts.DIAGNOSES) and per binary finding (our prompt sets and the
  reference's, side by side): one-vs-rest AUC on the raw score, F1 and accuracy at a threshold fitted
  (Youden's J) on the reference studies (the training part); prompts are encoded once;
- few-shot prototypes: support drawn without replacement from the reference studies, 1..32 shots,
  100 episodes, mean ± sd of accuracy, F1 and AUC;
- linear probe: L2-regularised logistic regression (torch L-BFGS), stratified 5-fold CV on the
  evaluated studies.
The metric functions at the top are plain numpy and tested on toy inputs.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from .prompts import DIAGNOSES, DIAGNOSIS_PROMPTS, FINDING_PROMPTS, REFERENCE_FINDING_PROMPTS, prompt_sets

KS = (1, 5, 10)
SHOTS = (1, 2, 4, 8, 16, 32)


# ---- metric functions ----------------------------------------------------------------------------
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
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); NaN if one class is absent."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    from scipy.stats import rankdata
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


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
    """(N,) fold id: each class shuffled and dealt round-robin over the k folds (offset by class)."""
    y = np.asarray(y, object)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), int)
    start = 0
    for c in sorted(set(y.tolist()), key=str):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (np.arange(len(idx)) + start) % k
        start += len(idx)
    return fold


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-2, iters: int = 100):
    """Multinomial logistic regression (torch L-BFGS, L2 on weights); returns predict_proba(x)."""
    import torch
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.long)
    W = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ W + b, yt) + l2 * (W ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    W_, b_ = W.detach(), b.detach()
    return lambda z: torch.softmax(torch.as_tensor(z, dtype=torch.float64) @ W_ + b_, 1).numpy()


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


# ---- zero-shot -----------------------------------------------------------------------------------
def prompt_embeddings(model) -> dict[str, np.ndarray]:
    """Every prompt encoded once -> prompt text -> (E,) L2-normalised."""
    from .embed import embed_texts
    from .prompts import all_prompts
    texts = all_prompts()
    return dict(zip(texts, embed_texts(model, texts)))


def zero_shot_scores(video: np.ndarray, prompts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """video (N, E) normalised -> name -> (N,) score: diagnoses by mean cosine over their prompts,
    findings by mean cosine over `pos` minus mean over `neg`, and `finding_ref:` the reference's sets
    (mean cosine, as in its comparison/prompt.py)."""
    def mean_cos(ps):
        return video @ np.mean([prompts[p] for p in ps], 0)
    out = {f"dx:{c}": mean_cos(DIAGNOSIS_PROMPTS[c]) for c in DIAGNOSES}
    for f, d in FINDING_PROMPTS.items():
        out[f"finding:{f}"] = mean_cos(d["pos"]) - (mean_cos(d["neg"]) if d.get("neg") else 0.0)
    out.update({f"finding_ref:{f}": mean_cos(ps) for f, ps in REFERENCE_FINDING_PROMPTS.items()})
    return out


# ---- the whole evaluation ------------------------------------------------------------------------
def embed_dataset(model, ds, batch_size: int = 64, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """-> (video (N, E), text (N, E)) L2-normalised; text rows of studies without a report are NaN."""
    from .embed import embed_clips, embed_texts
    batches = ds.eval_batches(batch_size)
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, total=math.ceil(len(ds) / batch_size), desc="embedding studies", unit="batch")
    video = embed_clips(model, batches)
    text = np.full_like(video, np.nan)
    has = [i for i, t in enumerate(ds.texts) if t.strip()]
    if has:
        text[has] = embed_texts(model, [ds.texts[i] for i in has], batch_size)
    return video, text


def evaluate(model, ds, eval_mask: np.ndarray, *, shots: Sequence[int] = SHOTS, episodes: int = 100,
             folds: int = 5, seed: int = 0, batch_size: int = 64, progress: bool = False,
             embeddings: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """All metrics for the studies with eval_mask True; the others are the reference (training) part
    that fits zero-shot thresholds and supplies few-shot support."""
    t0 = time.perf_counter()
    eval_mask = np.asarray(eval_mask, bool)
    video, text = embeddings if embeddings is not None else embed_dataset(model, ds, batch_size, progress)
    t_embed = time.perf_counter() - t0
    labels = np.asarray(ds.labels, object)
    splits = np.asarray(ds.splits, object)
    findings = ds.findings()
    ref = ~eval_mask
    scores = zero_shot_scores(video, prompt_embeddings(model))
    groups = {w: eval_mask & (splits == w) for w in ("train", "test")} \
        if any(s is not None for s in splits) else {"all": eval_mask}
    res: dict = {"n_evaluated": int(eval_mask.sum()), "n_reference": int(ref.sum()), "groups": {},
                 "prompts": prompt_sets()}
    for w, sel in groups.items():
        res["groups"][w] = _evaluate_group(sel, ref, video, text, labels, findings, scores,
                                           shots, episodes, folds, seed)
    res["seconds"] = {"embed": round(t_embed, 2), "total": round(time.perf_counter() - t0, 2)}
    return res


def _evaluate_group(sel, ref, video, text, labels, findings, scores, shots, episodes, folds, seed) -> dict:
    g: dict = {"n": int(sel.sum())}
    has_text = sel & ~np.isnan(text).any(1)
    if has_text.sum() >= 2:
        sim = video[has_text] @ text[has_text].T                            # (N, N) study x report
        lab = labels[has_text] if any(x is not None for x in labels) else None
        g["retrieval"] = {"study_to_report": retrieval_metrics(sim, lab),
                          "report_to_study": retrieval_metrics(sim.T, lab)}
    known = np.array([x is not None for x in labels])
    if not (known & sel).any():
        return g
    # zero-shot: diagnoses (one-vs-rest over all labelled studies) and findings
    zs: dict = {}
    for c in DIAGNOSES:
        s = scores[f"dx:{c}"]
        r, e = ref & known, sel & known
        thr = youden_threshold(labels[r] == c, s[r]) if r.any() else float(np.median(s))
        zs[c] = binary_metrics(labels[e] == c, s[e], thr)
    dx6 = sel & np.isin(labels, DIAGNOSES)
    if dx6.any():
        m = np.stack([scores[f"dx:{c}"] for c in DIAGNOSES], 1)[dx6]
        zs["top1_accuracy_6way"] = accuracy(labels[dx6], np.asarray(DIAGNOSES, object)[m.argmax(1)])
    g["zero_shot"] = {"diagnosis": zs, "findings": _zero_shot_findings(sel, ref, findings, scores, "finding"),
                      "findings_reference_prompts": _zero_shot_findings(sel, ref, findings, scores, "finding_ref")}
    # few-shot and linear probe: the six-way diagnosis task and each binary finding
    ref6 = ref & np.isin(labels, DIAGNOSES)
    fs = {"diagnosis": few_shot(video[ref6], labels[ref6], video[dx6], labels[dx6], DIAGNOSES, shots,
                                episodes, seed)}
    lp = {"diagnosis": linear_probe(video[dx6], labels[dx6], DIAGNOSES, folds, seed)} if dx6.any() else {}
    for f, y in findings.items():
        r, e = ref & ~np.isnan(y), sel & ~np.isnan(y)
        if not e.any():
            continue
        yr, ye = np.where(y[r] == 1, "pos", "neg"), np.where(y[e] == 1, "pos", "neg")
        fs[f] = few_shot(video[r], yr, video[e], ye, ("neg", "pos"), shots, episodes, seed)
        lp[f] = linear_probe(video[e], ye, ("neg", "pos"), folds, seed)
    g["few_shot"], g["linear_probe"] = fs, lp
    return g


def _zero_shot_findings(sel, ref, findings, scores, prefix: str) -> dict:
    """finding -> binary metrics of the `prefix:` scores, threshold fitted on the reference studies."""
    out = {}
    for f, y in findings.items():
        s = scores.get(f"{prefix}:{f}")
        r, e = ref & ~np.isnan(y), sel & ~np.isnan(y)
        if s is None or not e.any():
            continue
        thr = youden_threshold(y[r] == 1, s[r]) if r.any() else float(np.median(s))
        out[f] = binary_metrics(y[e] == 1, s[e], thr)
    return out


# ---- report --------------------------------------------------------------------------------------
def _f(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def format_markdown(res: dict, title: str = "Evaluation") -> str:
    """The tables of an evaluate() result, groups (wordings) side by side."""
    groups = list(res["groups"])
    head = " | ".join(f"{w} wording (n={res['groups'][w]['n']})" if w != "all" else f"all (n={res['groups'][w]['n']})"
                      for w in groups)
    lines = [f"# {title}", "", f"{res['n_evaluated']} evaluated studies, {res['n_reference']} reference "
             "(training-part) studies for thresholds and few-shot support.", ""]

    def table(name, rows):
        lines.extend([f"## {name}", "", f"| metric | {head} |", "|---|" + "---|" * len(groups)])
        for label, get in rows:
            cells = []
            for w in groups:
                try:
                    cells.append(get(res["groups"][w]))
                except (KeyError, TypeError):
                    cells.append("–")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")

    rows = []
    for d in ("study_to_report", "report_to_study"):
        for kind in ("exact", "same_label"):
            for m in ("R@1", "R@5", "R@10", "median_rank"):
                rows.append((f"{d} {kind} {m}",
                             lambda g, d=d, k=kind, m=m: _f(g["retrieval"][d][k][m])))
    table("Retrieval", rows)
    zs = lambda g, grp, c: "{} / {} / {}".format(*(_f(g["zero_shot"][grp][c][m]) for m in ("auc", "f1", "accuracy")))
    table("Zero-shot diagnosis (AUC / F1 / accuracy)",
          [(c, lambda g, c=c: zs(g, "diagnosis", c)) for c in DIAGNOSES]
          + [("6-way top-1 accuracy", lambda g: _f(g["zero_shot"]["diagnosis"]["top1_accuracy_6way"]))])
    fnames = sorted({f for w in groups for f in res["groups"][w].get("zero_shot", {}).get("findings", {})})
    table("Zero-shot findings (AUC / F1 / accuracy)", [(f, lambda g, f=f: zs(g, "findings", f)) for f in fnames])
    table("Zero-shot findings, the reference's prompt sets (reference §5.1; AUC / F1 / accuracy)",
          [(f, lambda g, f=f: zs(g, "findings_reference_prompts", f)) for f in fnames
           if f in REFERENCE_FINDING_PROMPTS])
    tasks = ["diagnosis"] + fnames
    for metric in ("auc", "accuracy"):
        rows = []
        for t in tasks:
            for n in SHOTS:
                rows.append((f"{t} {n}-shot", lambda g, t=t, n=n, m=metric:
                             f"{_f(g['few_shot'][t][str(n)][m]['mean'])} ± {_f(g['few_shot'][t][str(n)][m]['sd'])}"))
        table(f"Few-shot prototypes ({metric}, mean ± sd over episodes)", rows)
    table("Linear probe (stratified CV; AUC / F1 / accuracy)",
          [(t, lambda g, t=t: "{} / {} / {}".format(*(_f(g["linear_probe"][t][m]) for m in ("auc", "f1", "accuracy"))))
           for t in tasks])
    return "\n".join(lines)

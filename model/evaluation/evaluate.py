"""Evaluation of a checkpoint on the study cache (architecture.md §4; docs/cmrclip-reference.md §5-6).

    res = evaluate(model, CacheDataset(cache, model.clip_spec), eval_mask)
    Path("eval.md").write_text(format_markdown(res))            # model.evaluation.report

Per wording group of the evaluated studies (report split "train" = in-distribution wording, "test" =
held-out wording; "all" for real caches without ground truth), side by side:
- retrieval study->report and report->study: R@1/5/10 and median rank, for the exact pair and for
  same-diagnosis matches (a hit is any item whose label equals the query's; rank = first such item);
- zero-shot per diagnosis (model.prompts.DIAGNOSES) and per binary finding (our prompt sets and the
  reference's, side by side): one-vs-rest AUC on the raw score, F1 and accuracy at a threshold fitted
  (Youden's J) on the reference studies (the training part); prompts are encoded once;
- few-shot prototypes: support drawn without replacement from the reference studies, 1..32 shots,
  100 episodes, mean ± sd of accuracy, F1 and AUC;
- linear probe: L2-regularised logistic regression (scikit-learn, L-BFGS), stratified 5-fold CV on the
  evaluated studies.
The metric functions (metrics.py) and the few-shot / linear-probe classifiers (probes.py) are tested on
toy inputs.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..embed import embed_clips, embed_texts
from ..prompts import DIAGNOSES, DIAGNOSIS_PROMPTS, FINDING_PROMPTS, REFERENCE_FINDING_PROMPTS, all_prompts, prompt_sets
from .metrics import accuracy, binary_metrics, retrieval_metrics, youden_threshold
from .probes import SHOTS, few_shot, linear_probe


def prompt_embeddings(model) -> dict[str, np.ndarray]:
    """Every prompt encoded once -> prompt text -> (E,) L2-normalised."""
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
    batches = ds.eval_batches(batch_size)
    if progress:
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

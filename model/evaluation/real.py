"""Real-data evaluation of `study` vectors on a labelled cohort (an ACDC-layout folder: five groups).

    res = real_group_metrics(video, labels, group_prompt_vectors, raw=pixels)

What a clinician's cohort question needs from the image side, measured on frozen vectors:
- **probe**: a 5-group logistic regression (probes.linear_probe, standardised features), repeated
  stratified k-fold cross-validation (`repeats` shufflings): accuracy mean and sd over repeats, and the
  per-repeat values; the same probe on raw pixels (`raw`, optional) is the floor measured in the same run;
- **zero-shot**: one-vs-rest ROC AUC per group of the cosine with the group's prompts (ACDC_GROUP_PROMPTS:
  the issue's plain name first, then two paraphrases; the score is the mean cosine over them), and of the
  plain name alone;
- **study-to-study**: same-group precision@k (k = 3): each study queries all the others by cosine; mean
  and sd over queries, and per group.
The dev set is small (20 patients): every number is reported with its spread; nothing here is fitted
on it but the probe, and that only inside cross-validation.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .metrics import roc_auc
from .probes import linear_probe

ACDC_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")

# The plain names are the issue's; the paraphrases were written before any score was seen.
ACDC_GROUP_PROMPTS: dict[str, tuple[str, ...]] = {
    "DCM": ("dilated cardiomyopathy",
            "enlarged poorly contracting left ventricle",
            "dilated left ventricle with reduced ejection fraction"),
    "HCM": ("hypertrophic cardiomyopathy",
            "thick-walled left ventricle with septal hypertrophy",
            "left ventricular hypertrophy with preserved function"),
    "MINF": ("previous myocardial infarction",
             "old infarct with a thinned akinetic wall segment",
             "ischemic cardiomyopathy with regional wall motion abnormality"),
    "RV": ("abnormal right ventricle",
           "dilated right ventricle with reduced right ventricular function",
           "enlarged right ventricle"),
    "NOR": ("normal",
            "a normal heart on cardiac magnetic resonance",
            "normal ventricular sizes, wall thickness and contraction"),
}


def _mean_sd(v: Sequence[float]) -> dict:
    a = np.asarray(v, float)
    return {"mean": float(np.mean(a)), "sd": float(np.std(a)), "n": int(len(a))}


def repeated_probe(x: np.ndarray, labels: np.ndarray, classes: Sequence[str], folds: int = 4,
                   repeats: int = 10, seed: int = 0) -> dict:
    """Accuracy of the k-fold logistic probe over `repeats` fold shufflings -> mean, sd, per repeat."""
    accs = []
    for r in range(repeats):
        res = linear_probe(np.asarray(x, np.float64), labels, classes, folds=folds, seed=seed + r)
        if "skipped" in res:
            return {"skipped": res["skipped"]}
        accs.append(res["accuracy"])
    return {"accuracy": _mean_sd(accs), "per_repeat": [round(a, 4) for a in accs], "folds": folds,
            "repeats": repeats, "chance": 1.0 / len(classes)}


def zero_shot_aucs(video: np.ndarray, labels: np.ndarray, prompt_vectors: dict[str, np.ndarray]) -> dict:
    """prompt_vectors: group -> (P, E) normalised prompt embeddings (row 0 = the plain name)
    -> group -> {"auc": mean-prompt AUC, "auc_name": AUC of the plain name alone}."""
    out = {}
    for g, pv in prompt_vectors.items():
        y = labels == g
        if not y.any() or y.all():
            continue
        out[g] = {"auc": roc_auc(y, video @ pv.mean(0)), "auc_name": roc_auc(y, video @ pv[0])}
    return out


def precision_at_k(video: np.ndarray, labels: np.ndarray, k: int = 3) -> dict:
    """Each study queries the others by cosine: share of the top k with its own group."""
    sim = video @ video.T
    np.fill_diagonal(sim, -np.inf)
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    hits = (labels[top] == labels[:, None]).mean(1)
    by_group = {str(g): float(hits[labels == g].mean()) for g in dict.fromkeys(labels.tolist())}
    return {"k": k, **_mean_sd(hits), "by_group": by_group}


def real_group_metrics(video: np.ndarray, labels: Sequence[str], prompt_vectors: dict[str, np.ndarray],
                       raw: np.ndarray | None = None, folds: int = 4, repeats: int = 10, seed: int = 0,
                       k: int = 3) -> dict:
    """All real-data metrics of L2-normalised study vectors `video` (N, E) with group `labels`."""
    labels = np.asarray(labels, object)
    classes = sorted(set(labels.tolist()))
    res = {"n": int(len(labels)), "groups": {c: int((labels == c).sum()) for c in classes},
           "probe": repeated_probe(video, labels, classes, folds, repeats, seed),
           "zero_shot": zero_shot_aucs(video, labels, prompt_vectors),
           "study_to_study": precision_at_k(video, labels, k)}
    if raw is not None:
        res["probe_raw_pixels"] = repeated_probe(raw, labels, classes, folds, repeats, seed)
    return res


def format_real_markdown(res: dict, title: str) -> str:
    """eval_real.md: the three measures with their spread, and the raw-pixel floor."""
    def pm(d):
        return f"{d['mean']:.2f} +- {d['sd']:.2f}" if d and "mean" in d else "-"
    p = res["probe"]
    lines = [f"# {title}", "", f"{res['n']} studies: " + ", ".join(f"{g} {n}" for g, n in res["groups"].items()), "",
             "| measure | value |", "|---|---|",
             f"| {len(res['groups'])}-group probe accuracy ({p.get('folds')}-fold, {p.get('repeats')} repeats; "
             f"sd over repeats; chance {p.get('chance', 0):.2f}) | {pm(p.get('accuracy'))} |"]
    if "probe_raw_pixels" in res:
        lines.append(f"| the same probe on raw pixels (floor) | {pm(res['probe_raw_pixels'].get('accuracy'))} |")
    s = res["study_to_study"]
    lines.append(f"| study-to-study same-group precision@{s['k']} | {pm(s)} |")
    for g, z in res["zero_shot"].items():
        lines.append(f"| zero-shot AUC {g} (mean of prompts / plain name) | {z['auc']:.2f} / {z['auc_name']:.2f} |")
    lines += ["", "precision@%d by group: " % s["k"] + ", ".join(f"{g} {v:.2f}" for g, v in s["by_group"].items()), ""]
    return "\n".join(lines)

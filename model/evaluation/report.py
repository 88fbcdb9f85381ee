"""The report of an evaluation: eval.md tables (groups side by side), JSON-safe eval.json values, and the
one-line headline per wording group that `cmr eval` prints."""
from __future__ import annotations

import math

from ..prompts import DIAGNOSES, REFERENCE_FINDING_PROMPTS
from .probes import SHOTS


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


def json_safe(x):
    """JSON-safe: NaN / inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def headline(res: dict) -> str:
    """Per wording group: retrieval R@1 / R@10 and the zero-shot 6-way accuracy, one line each."""
    parts = []
    for w, g in res["groups"].items():
        r = g.get("retrieval", {}).get("study_to_report", {})
        zs = g.get("zero_shot", {}).get("diagnosis", {})
        s = f"{w} wording (n={g['n']}):"
        if r:
            s += f" study->report R@1 {r['exact']['R@1']:.2f} R@10 {r['exact']['R@10']:.2f}"
        if "top1_accuracy_6way" in zs:
            s += f", zero-shot 6-way acc {zs['top1_accuracy_6way']:.2f}"
        parts.append(s)
    return "\n".join(parts)

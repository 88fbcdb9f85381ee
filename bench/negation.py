"""Assertion status of findings in report sentences: the old NegEx-style module against medspaCy ConText.

    python -m bench.negation [--split dev|test|all] [--show-errors] [--systems old,old_clauses,new]

Data: bench/data/assertion/{dev,test}.jsonl, hand-written CMR report sentences (README there: the labelling
conventions and the split). Each row is a sentence, a target (an exact substring: the finding judged) and
its label, one of affirmed, negated, uncertain, historical, family.

Systems, each asked for one label per row:
- old: `affirmed_text` of bench/negex_baseline.py (model/negation.py until issue #20), what the report embedder sees; `negated` when the target
  (case-insensitive, as a whole term) no longer appears in affirmed_text(sentence), else `affirmed` (the
  module has no other classes). affirmed_text keeps a sentence whole when it affirms nothing, so a fully
  negated sentence ("No LGE.") comes out `affirmed`;
- old_clauses: the same NegEx rules without that keep-it-whole fallback (`affirmed_clauses`);
- new: `cmr_search.model.report_context.assertion(sentence, target) -> label`.
A system whose module does not import is reported unavailable (the others are still scored); a row where
a system raises counts as wrong (label "error").

Measures, per system: precision, recall, F1 and support per label (one label against the rest, over rows;
precision 0 when a system never predicts the label); accuracy and macro F1; accuracy per category; the
median time per row in ms (over a second pass: the first call, where a pipeline loads, is timed apart).

Acceptance (new, on the held-out split `--split test`): negated F1 >= 0.93 and uncertain F1 >= 0.85.
The test split is held out: score it once, at the end; `--show-errors` prints dev rows only.
Results: a table, and bench/results/negation_{split}.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

try:
    from bench import negex_baseline as old_negation
except ImportError:                        # the old module may be deleted once the new one replaces it
    old_negation = None

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "assertion"
LABELS = ("affirmed", "negated", "uncertain", "historical", "family")
TARGETS = {"negated": 0.93, "uncertain": 0.85}          # F1 on the held-out split
SYSTEMS = ("old", "old_clauses", "new")


# --- data ---------------------------------------------------------------------------------------------

def load_rows(split: str) -> list[dict]:
    """Rows of dev.jsonl, test.jsonl, or both ('all')."""
    names = ("dev", "test") if split == "all" else (split,)
    return [json.loads(line) for name in names
            for line in (DATA / f"{name}.jsonl").read_text().splitlines() if line.strip()]


# --- systems ------------------------------------------------------------------------------------------

def mentions(text: str, target: str) -> bool:
    """`target` appears in `text` as a whole term, case-insensitive ("MI" is not found in "mild")."""
    return re.search(r"(?<!\w)" + re.escape(target) + r"(?!\w)", text, re.I) is not None


def old_assertion(sentence: str, target: str) -> str:
    return "affirmed" if mentions(old_negation.affirmed_text(sentence), target) else "negated"


def old_clauses_assertion(sentence: str, target: str) -> str:
    return "affirmed" if mentions(" . ".join(old_negation.affirmed_clauses(sentence)), target) else "negated"


def new_assertion():
    """(the new assertion function, None), or (None, why it is unavailable)."""
    try:
        from cmr_search.model.report_context import assertion
    except Exception as exc:               # ImportError, or the module failing at import time
        return None, f"{type(exc).__name__}: {exc}"
    return assertion, None


def systems_to_run(wanted: list[str]) -> tuple[dict, dict]:
    """({name: assertion function}, {name: block of a system not run}) for the systems asked for."""
    new_fn, new_why = new_assertion() if "new" in wanted else (None, "not asked for (--systems)")
    fns = {"old": old_assertion, "old_clauses": old_clauses_assertion, "new": new_fn}
    why = {"old": "bench/negex_baseline.py does not import", "new": new_why}
    why["old_clauses"] = why["old"]
    if old_negation is None:
        fns["old"] = fns["old_clauses"] = None
    run = {name: fn for name, fn in fns.items() if name in wanted and fn is not None}
    not_run = {name: {"available": False, "reason": why[name] if name in wanted else "not asked for (--systems)"}
               for name in SYSTEMS if name not in run}
    return run, not_run


def predict(fn, rows: list[dict]) -> tuple[list[str], list[float], dict]:
    """Labels and per-row milliseconds; a row where `fn` raises gets the label 'error'. One untimed pass
    first (the first call's time is kept: a pipeline loads there; the regex caches fill)."""
    info = {"first_call_ms": _ms(lambda: _safe(fn, rows[0])), "errors": 0, "first_error": None}
    for row in rows:
        _safe(fn, row)
    preds, times = [], []
    for row in rows:
        t = time.perf_counter()
        label = _safe(fn, row)
        times.append((time.perf_counter() - t) * 1000)
        if isinstance(label, Exception):
            info["errors"] += 1
            info["first_error"] = info["first_error"] or f"{row['id']}: {type(label).__name__}: {label}"
            label = "error"
        preds.append(label)
    return preds, times, info


def _safe(fn, row: dict):
    try:
        return fn(row["sentence"], row["target"])
    except Exception as exc:               # a partial implementation must not stop the bench
        return exc


def _ms(call) -> float:
    t = time.perf_counter()
    call()
    return round((time.perf_counter() - t) * 1000, 1)


# --- scores -------------------------------------------------------------------------------------------

def label_scores(gold: list[str], pred: list[str]) -> dict[str, dict]:
    """Per label, one against the rest: precision, recall, F1, support (gold count), predicted count."""
    out = {}
    for label in LABELS:
        tp = sum(g == label and p == label for g, p in zip(gold, pred))
        n_pred, n_gold = pred.count(label), gold.count(label)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                      "support": n_gold, "predicted": n_pred}
    return out


def accuracy(gold: list[str], pred: list[str]) -> float:
    return round(sum(g == p for g, p in zip(gold, pred)) / len(gold), 4) if gold else 0.0


def category_accuracy(rows: list[dict], pred: list[str]) -> dict[str, dict]:
    out = {}
    for cat in sorted({r["category"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["category"] == cat]
        out[cat] = {"accuracy": accuracy([rows[i]["label"] for i in idx], [pred[i] for i in idx]), "rows": len(idx)}
    return out


def confusion(gold: list[str], pred: list[str]) -> dict[str, dict[str, int]]:
    """gold label -> predicted label -> rows."""
    out = {g: {} for g in LABELS}
    for g, p in zip(gold, pred):
        out[g][p] = out[g].get(p, 0) + 1
    return out


def score(fn, rows: list[dict]) -> tuple[dict, list[str]]:
    """One system's block of the results, and its predictions."""
    preds, times, info = predict(fn, rows)
    gold = [r["label"] for r in rows]
    per_label = label_scores(gold, preds)
    block = {"available": True, "accuracy": accuracy(gold, preds),
             "macro_f1": round(sum(s["f1"] for s in per_label.values()) / len(LABELS), 4),
             "labels": per_label, "categories": category_accuracy(rows, preds), "confusion": confusion(gold, preds),
             "median_ms_per_row": round(statistics.median(times), 3), **info}
    return block, preds


def acceptance(block: dict, split: str) -> dict:
    checks = {f"{label}_f1>={t}": block["labels"][label]["f1"] >= t for label, t in TARGETS.items()}
    return {"binding": split == "test", "checks": checks, "met": all(checks.values())}


# --- output -------------------------------------------------------------------------------------------

def table(systems: dict[str, dict]) -> str:
    """Markdown: P / R / F1 per label, accuracy, ms per row, accuracy per category; one column per system."""
    live = {name: b for name, b in systems.items() if b.get("available")}
    first = next(iter(live.values()))
    lines = ["| label | rows | " + " | ".join(f"{n} P / R / F1" for n in live) + " |", "|---" * (2 + len(live)) + "|"]
    for label in LABELS:
        cells = [" / ".join(f"{b['labels'][label][k]:.2f}" for k in ("precision", "recall", "f1"))
                 for b in live.values()]
        lines.append(f"| {label} | {first['labels'][label]['support']} | " + " | ".join(cells) + " |")
    lines.append("| accuracy | | " + " | ".join(f"{b['accuracy']:.3f}" for b in live.values()) + " |")
    lines.append("| ms / row (median) | | " + " | ".join(f"{b['median_ms_per_row']:.3f}" for b in live.values()) + " |")
    for cat, c in first["categories"].items():
        lines.append(f"| cat: {cat} | {c['rows']} | "
                     + " | ".join(f"{b['categories'][cat]['accuracy']:.3f}" for b in live.values()) + " |")
    return "\n".join(lines)


def print_errors(name: str, rows: list[dict], preds: list[str]) -> None:
    wrong = [(r, p) for r, p in zip(rows, preds) if r["label"] != p]
    print(f"\n{name}: {len(wrong)} wrong of {len(rows)}")
    for r, p in wrong:
        print(f"  {r['id']:<8} gold {r['label']:<10} got {p:<10} [{r['target']}]  {r['sentence']}")


def machine() -> dict:
    return {"processor": platform.processor() or platform.machine(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("dev", "test", "all"), default="dev",
                   help="dev (default); test: the held-out split, scored once at the end; all: both")
    p.add_argument("--show-errors", action="store_true", help="print the rows each system gets wrong (dev only)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help="comma-separated, of " + ", ".join(SYSTEMS) + " (e.g. old only on test before the end)")
    p.add_argument("--out", type=Path, default=None, help="default: bench/results/negation_{split}.json")
    args = p.parse_args(argv)
    if args.show_errors and args.split != "dev":
        p.error("--show-errors prints dev rows only: the test rows are held out, and reading them would tune "
                "the rules to the split that is meant to judge them")
    args.systems = args.systems.split(",")
    if not set(args.systems) <= set(SYSTEMS):
        p.error(f"--systems: some of {', '.join(SYSTEMS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = load_rows(args.split)
    fns, not_run = systems_to_run(args.systems)
    systems, preds = {}, {}
    for name, fn in fns.items():
        systems[name], preds[name] = score(fn, rows)
    systems.update(not_run)
    systems = {name: systems[name] for name in SYSTEMS}
    if "new" in fns:
        systems["new"]["acceptance"] = acceptance(systems["new"], args.split)
    print(f"split {args.split}: {len(rows)} rows")
    print(table(systems) if fns else "no system could be scored")
    for name, block in not_run.items():
        print(f"{name}: not scored ({block['reason']})")
    if "new" in fns:
        print(f"new: acceptance {systems['new']['acceptance']}, errors {systems['new']['errors']}")
    if args.show_errors:
        for name in fns:
            print_errors(name, rows, preds[name])
    command = "python -m bench.negation " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {"about": __doc__.splitlines()[0], "command": command.strip(), "split": args.split, "rows": len(rows),
              "machine": machine(), "targets": TARGETS, "systems": systems}
    out = args.out or ROOT / "bench" / "results" / f"negation_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Indexing cost of the report text side: reports per second, old reading (NegEx-style regex,
bench/negex_baseline.py) vs new (medspaCy ConText, model/report_context.py), on this machine's cores.

    python -m bench.text [--cache DATA/cache] [--n 400] [--repeat 3]

What one report costs the indexer on the text side, as `cmr index` does it: the reading (kept clauses; the
new one also reads the findings for the payload, finding_keys), the sentence encoder over the kept text
and each kept clause (all-MiniLM-L6-v2, batched as ReportTextEncoder.encode_reports), and the BM25 words
(search/terms.py); and, apart, the de-identification `cmr prepare` runs first (indexer/redact.py: the old
rules alone vs with the philter pass). Reports: the impressions of a prepared cache (--cache), else reports of 3-6 sentences
drawn (seeded) from the hand-written report-style sentences of bench/data/assertion/dev.jsonl.

Floor: the encoder alone, once over each raw report (no reading, no clauses), in the same run. Acceptance (issue #20): the new
text side at most 2x slower per report than the old. Results: a table and bench/results/text.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

from bench import negex_baseline as old  # noqa: E402
from cmr_search.indexer.redact import redact_patterns, redact_report  # noqa: E402
from cmr_search.model import report_context as new  # noqa: E402
from cmr_search.model.report_text import MAX_CLAUSES, ReportTextEncoder  # noqa: E402
from cmr_search.search.terms import words  # noqa: E402


def reports_from_cache(cache: Path, n: int) -> list[str]:
    import polars as pl
    t = pl.read_parquet(cache / "studies.parquet", columns=["impression"])
    texts = [x for x in t["impression"].to_list() if x]
    return texts[:n]


def reports_from_sentences(n: int, seed: int = 0) -> list[str]:
    rows = [json.loads(x) for x in (ROOT / "bench" / "data" / "assertion" / "dev.jsonl").read_text().splitlines()
            if x.strip()]
    sentences = sorted({r["sentence"] for r in rows})
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, rng.randint(3, 6))) for _ in range(n)]


def read_old(texts: list[str]) -> list[list[str]]:
    return [old.affirmed_clauses(t) for t in texts]


def read_new(texts: list[str]) -> list[list[str]]:
    out = []
    for t in texts:
        out.append(new.affirmed_clauses(t))
        new.finding_keys(t)
    return out


def encode(enc: ReportTextEncoder, texts: list[str], kept: list[list[str]]) -> None:
    """What encode_reports and the sparse vectors cost for already-read reports."""
    parts = [k[:MAX_CLAUSES] or [t.strip()] for k, t in zip(kept, texts)]
    flat = [new.joined(k, t) for k, t in zip(kept, texts)] + [c for p in parts for c in p]
    enc.encode(flat)
    for k, t in zip(kept, texts):
        Counter(words(new.joined(k, t)))          # the BM25 term counts of report_terms, read already


def timed(fn, repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=None, help="a prepared cache folder (its impressions)")
    p.add_argument("--n", type=int, default=400, help="reports")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "text.json")
    args = p.parse_args(argv)
    texts = reports_from_cache(args.cache, args.n) if args.cache else reports_from_sentences(args.n)
    enc = ReportTextEncoder()
    t0 = time.perf_counter()
    new.reader()
    load_s = time.perf_counter() - t0
    kept_old, kept_new = read_old(texts), read_new(texts)
    floor = timed(lambda: enc.encode(texts), args.repeat)
    reading = {"old": timed(lambda: read_old(texts), args.repeat), "new": timed(lambda: read_new(texts), args.repeat)}
    side = {"old": reading["old"] + timed(lambda: encode(enc, texts, kept_old), args.repeat),
            "new": reading["new"] + timed(lambda: encode(enc, texts, kept_new), args.repeat)}
    redact_report("warm up: load philter's lists once")
    redaction = {"old": timed(lambda: [redact_patterns(t) for t in texts], args.repeat),
                 "new": timed(lambda: [redact_report(t) for t in texts], args.repeat)}
    n = len(texts)
    result = {
        "command": "python -m bench.text " + " ".join(sys.argv[1:] if argv is None else argv),
        "reports": n, "source": str(args.cache) if args.cache else "bench/data/assertion/dev.jsonl sentences",
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "reader_load_s": round(load_s, 2),
        "floor_reports_per_s": round(n / floor, 1),
        "reading_ms_per_report": {k: round(v / n * 1000, 3) for k, v in reading.items()},
        "text_side_reports_per_s": {k: round(n / v, 1) for k, v in side.items()},
        "text_side_ratio_to_floor": {k: round(v / floor, 2) for k, v in side.items()},
        "new_over_old": round(side["new"] / side["old"], 2),
        "redaction_ms_per_report": {k: round(v / n * 1000, 3) for k, v in redaction.items()},
        "with_redaction_reports_per_s": {k: round(n / (side[k] + redaction[k]), 1) for k in side},
        "with_redaction_new_over_old": round((side["new"] + redaction["new"]) / (side["old"] + redaction["old"]), 2),
        "acceptance": {"new_over_old<=2": side["new"] / side["old"] <= 2.0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| reading | ms/report (reading) | reports/s (text side) | x floor |\n|---|---|---|---|")
    for k in ("old", "new"):
        print(f"| {k} | {result['reading_ms_per_report'][k]} | {result['text_side_reports_per_s'][k]} "
              f"| {result['text_side_ratio_to_floor'][k]} |")
    print(f"redaction (prepare): old rules {result['redaction_ms_per_report']['old']} ms, with philter "
          f"{result['redaction_ms_per_report']['new']} ms per report; text side with redaction new/old "
          f"{result['with_redaction_new_over_old']}")
    print(f"floor (encoder alone): {result['floor_reports_per_s']} reports/s; new/old {result['new_over_old']}; "
          f"reader load {result['reader_load_s']} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

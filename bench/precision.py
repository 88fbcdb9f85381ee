"""Precision@k of text -> study search on an indexed SYNTHETIC phantom archive (issue #5 acceptance).

    cmr synth --n 650 --profile tiny --seed 7 --wording test --workers 2 --out A
    cmr prepare A --out DATA/cache --workers 2
    cmr index --data DATA --checkpoint model/checkpoints/cmr-tiny-phantom
    python bench/precision.py --data DATA [--queries bench/queries.json] [--k 10]

For every class of bench/queries.json (queries in the phantom's held-out wording; bench/queries_b.json is
a second set) and every search mode (image: the study vector, i.e. the CMR-CLIP model; report: the
report text, RRF of its sentence-encoder vectors and BM25 words, docs/search.md; hybrid: all fused),
precision@k = share of
the top k studies whose class (study.json, kept by `cmr prepare` in the cache's label column) is the
query's class, averaged over the class's queries. The floor is the class's share of the archive (what a
random ranking gives). Results: a markdown table, and bench/results/precision.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import polars as pl  # noqa: E402

MODES = ("image", "report", "hybrid")


def class_of_keys(data: Path) -> dict[str, str]:
    t = pl.read_parquet(data / "cache" / "studies.parquet", columns=["study_key", "label"])
    if t["label"].null_count() == t.height:
        raise SystemExit(f"{data}/cache has no synthetic truth (label column empty): not a phantom archive")
    return dict(zip(t["study_key"].to_list(), t["label"].to_list()))


def precision_table(client, queries: dict[str, list[str]], truth: dict[str, str], k: int) -> dict:
    out = {}
    for cls, texts in queries.items():
        row = {"n_in_archive": sum(v == cls for v in truth.values())}
        row["floor"] = round(row["n_in_archive"] / len(truth), 3)
        for mode in MODES:
            per_query = []
            for text in texts:
                keys = client.search(text, k=k, mode=mode)["study_key"].to_list()
                per_query.append(sum(truth.get(key) == cls for key in keys) / k)
            row[mode] = round(sum(per_query) / len(per_query), 3)
            row[f"{mode}_per_query"] = [round(p, 2) for p in per_query]
        out[cls] = row
    return out


def markdown(table: dict, k: int) -> str:
    lines = [f"| class | studies | floor | image P@{k} | report P@{k} | hybrid P@{k} |", "|---|---|---|---|---|---|"]
    for cls, r in table.items():
        lines.append(f"| {cls} | {r['n_in_archive']} | {r['floor']:.2f} | {r['image']:.2f} | {r['report']:.2f} "
                     f"| {r['hybrid']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="indexed data folder (DATA/cache + the store)")
    p.add_argument("--queries", default=str(ROOT / "bench" / "queries.json"))
    p.add_argument("--checkpoint", default=None, help="default: the one the data folder was indexed with")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--fusion", choices=("weighted", "plain"), default="weighted",
                   help="hybrid as shipped (weighted RRF + measurements, search/fusion.py) or the earlier plain RRF")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "precision.json"))
    args = p.parse_args(argv)
    from cmr_search.search import connect
    data = Path(args.data)
    truth = class_of_keys(data)
    queries = json.loads(Path(args.queries).read_text())["classes"]
    with connect(data=data, checkpoint=args.checkpoint) as client:
        info = client.info()
        if args.fusion == "plain":
            client.image_weight, client.use_measurements = 1.0, False
        info["fusion"] = {"mode": args.fusion, "image_weight": client.image_weight}
        table = precision_table(client, queries, truth, args.k)
    md = markdown(table, args.k)
    print(md)
    res = {"data": str(data.resolve()), "studies": len(truth), "k": args.k, "index": info,
           "queries": str(args.queries), "table": table, "markdown": md}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

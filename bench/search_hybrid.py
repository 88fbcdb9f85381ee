"""Latency of the three text-search modes on the embedded store, with every vector a real index holds.

    python -m bench.search_hybrid [--sizes 10000,100000] [--queries 40]     # from the repository root
    python -m bench.search_hybrid --encode-only --queries 100    # the query encodings alone (no store)

bench/search.py measures the image vector alone up to 1,000,000 studies (engine, recall, floor). This one
times what `search()` does by default since the report-text vectors exist: per size, SYNTHETIC studies
with `study` (256-d), `report` (256-d), `report_text` (384-d), `report_clauses` (4 clause vectors of
384-d, MaxSim) and `report_terms` (20 BM25-weighted words from a Zipf vocabulary), written with
`Store.upsert_studies` and optimized (HNSW) as `cmr index` does; then per mode (image, report, hybrid)
p50/p95 of `Client.search()` end to end on fresh query strings (fresh: no query cache) and of the engine
part alone (`Store.nearest` / `Store.fuse` on precomputed query vectors), and the text encodings (the
model's text tower; the report-text encoder). Floor, as in bench/search.py: one numpy matrix-vector
product over the (N, 256) study matrix, same timing loop. Results: bench/results/search_hybrid.json.

Per `--encoders`: "onnx" is what a long-lived client does (model/query_text.py: the frozen MiniLM and
the text head, one backbone and one pooled-feature cache for both spaces, the MiniLM run by ONNX Runtime,
model/query_onnx.py); "numpy" the same in numpy (a one-query `cmr search`); "torch" puts the client back
on the torch tower (embed_texts) and the sentence-transformers ReportTextEncoder, the path before, in the
same run on the same store. Unsuffixed keys are the onnx rows. `search_hybrid_repeat`: the same query again (the LRU query cache). Goal:
hybrid search() p50 <= 20 ms at 100,000 studies on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from bench.search import DIM, K, QUERY_TEXTS, draw, pct, rss_mib, timed, unit  # noqa: E402

TEXT_DIM, CLAUSES, WORDS, VOCAB = 384, 4, 20, 2000


def rows(start: int, stop: int, rng: np.random.Generator, centres: np.ndarray, tcentres: np.ndarray):
    from cmr_search.search.collection import Sparse
    n = stop - start
    study, report = draw(n, centres, rng), draw(n, centres, rng)
    text = unit(tcentres[rng.integers(len(tcentres), size=n)] + 0.9 * rng.normal(size=(n, TEXT_DIM)) / np.sqrt(TEXT_DIM))
    for j in range(n):
        clauses = unit(text[j] + rng.normal(size=(CLAUSES, TEXT_DIM)) / np.sqrt(TEXT_DIM))
        words = np.unique(np.minimum(rng.zipf(1.3, size=WORDS), VOCAB))
        yield {"study_key": f"h{start + j:08d}", "sex": "F" if j % 2 else "M", "views": ["cine_sax"],
               "model_id": "bench:000000000000",
               "vectors": {"study": study[j], "report": report[j], "report_text": text[j], "report_clauses": clauses,
                           "report_terms": Sparse(words.tolist(), rng.uniform(0.3, 1.6, size=len(words)).tolist())}}


def build(folder: Path, n: int, seed: int) -> dict:
    from cmr_search.search import Store
    rng = np.random.default_rng(seed)
    centres, tcentres = unit(rng.normal(size=(216, DIM))), unit(rng.normal(size=(216, TEXT_DIM)))
    t0 = time.perf_counter()
    with Store.open(data=folder, dim=DIM) as store:
        for s in range(0, n, 2048):
            store.upsert_studies(rows(s, min(s + 2048, n), rng, centres, tcentres))
        t1 = time.perf_counter()
        store.optimize()
    return {"upsert_s": round(t1 - t0, 1), "optimize_s": round(time.perf_counter() - t1, 1), "centres": centres}


def use_encoders(client, model, kind: str) -> None:
    """Point the client at the query encoders of `kind`: onnx (a long-lived client's default: the numpy
    encoders' MiniLM on ONNX Runtime), numpy (the one-query CLI's runtime), torch (the path before both)."""
    from cmr_search.model.query_text import TorchTextEncoder, query_encoder, set_runtime
    from cmr_search.search.query_encoding import report_encoder
    set_runtime("numpy" if kind == "numpy" else "onnx")
    if kind in ("onnx", "numpy"):
        client._text, client._report_encoder = query_encoder(model=model), report_encoder()
    else:
        from cmr_search.model.report_text import ReportTextEncoder
        client._text, client._report_encoder = TorchTextEncoder(model), ReportTextEncoder().encode_query
    client._queries.clear()
    client._report_queries.clear()


def run_size(n: int, args, model) -> dict:
    from cmr_search.search import connect
    folder = Path(tempfile.mkdtemp(prefix=f"bench-hybrid-{n}-", dir=args.tmp))
    try:
        b = build(folder, n, n)
        res = {"n": n, "build": {k: v for k, v in b.items() if k != "centres"}}
        X = draw(n, b["centres"], np.random.default_rng(n))            # the floor's matrix: same shape as `study`
        with connect(folder, model=model) as client:
            texts = [f"{QUERY_TEXTS[i % len(QUERY_TEXTS)]} #{n} {i}" for i in range(args.queries)]
            for enc in args.encoders.split(","):
                use_encoders(client, model, enc)
                client.search(f"warm-up {enc}", k=K)
                suffix = "" if enc == "onnx" else f"_{enc}"
                for mode in ("image", "report", "hybrid"):
                    t, _ = timed(lambda q: client.search(f"{q} {mode}{suffix}", k=K, mode=mode), texts)
                    res[f"search_{mode}{suffix}"] = pct(t)
                t, _ = timed(lambda q: client.search(f"{q} hybrid{suffix}", k=K, mode="hybrid"), texts)
                res[f"search_hybrid_repeat{suffix}"] = pct(t)
                res[f"encode_model_text{suffix}"] = pct(timed(lambda q: client.encode_query(q + " e" + suffix), texts)[0])
                res[f"encode_report_text{suffix}"] = pct(timed(lambda q: client.encode_report_query(q + " e" + suffix), texts)[0])
            use_encoders(client, model, "onnx")
            qs = {"study": client.encode_query(texts[0]), **client._report_queries_for(texts[0])}
            store = client.store
            res["engine_image"] = pct(timed(lambda _: store.nearest(qs["study"], "study", None, K), texts)[0])
            report_q = {u: v for u, v in qs.items() if u != "study"}
            res["engine_report"] = pct(timed(lambda _: store.fuse(report_q, None, K), texts)[0])
            res["engine_hybrid"] = pct(timed(lambda _: store.fuse(qs, None, K), texts)[0])
            res["rss_mib"] = round(rss_mib(), 1)
        v = np.random.default_rng(1).normal(size=DIM).astype(np.float32)
        res["floor_matvec"] = pct(timed(lambda _: X @ v, texts)[0])
        res["index_disk_mib"] = round(sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file()) / 2**20, 1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(res, indent=1), flush=True)
    return res


def encode_only(model, args) -> dict:
    """The query encodings alone, one block of fresh queries each (not interleaved: torch's idle worker
    threads spin and would slow what runs next): a hybrid query's two vectors by the numpy encoders with
    the MiniLM on ONNX Runtime (a client's default) and in numpy (the one-query CLI), and by the torch path
    (the tower, then the sentence-transformers encoder), one encoding by each runtime, and the floor (the
    (N, 256) matvec) before and after them."""
    from cmr_search.model import embed_texts
    from cmr_search.model.query_text import QueryEncoder, report_query, set_runtime
    from cmr_search.model.report_text import ReportTextEncoder
    enc, st = QueryEncoder.from_model(model), ReportTextEncoder()
    X = np.random.default_rng(0).normal(size=(args.floor_n, DIM)).astype(np.float32)
    v = np.random.default_rng(1).normal(size=DIM).astype(np.float32)

    def pair(runtime: str):
        def run(q: str):
            set_runtime(runtime)
            q = f"{q} {runtime}"
            return enc.prefetch(q), enc.encode([q]), report_query(q)
        return run

    def one(runtime: str):
        return lambda q: (set_runtime(runtime), enc.encode([f"{q} one {runtime}"]))
    enc.encode(["warm-up"])                                   # builds the ONNX Runtime session
    jobs = {"floor_matvec": lambda q: X @ v,
            "onnx_hybrid_pair": pair("onnx"), "numpy_hybrid_pair": pair("numpy"),
            "onnx_one_text": one("onnx"), "numpy_one_text": one("numpy"),
            "torch_hybrid_pair": lambda q: (embed_texts(model, [q + " t"]), st.encode_query(q + " t")),
            "floor_matvec_after": lambda q: X @ v}
    texts = [f"{QUERY_TEXTS[i % len(QUERY_TEXTS)]} #enc {i}" for i in range(args.queries)]
    res = {k: pct(timed(fn, texts)[0]) for k, fn in jobs.items()}
    set_runtime(None)
    res["floor_n"] = args.floor_n
    print(json.dumps(res, indent=1), flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--queries", type=int, default=40, help="fresh query strings per mode")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--encoders", default="onnx,numpy,torch",
                   help="onnx (a client's default), numpy (the CLI's), torch (before); any of them")
    p.add_argument("--encode-only", action="store_true", help="time the query encodings only (no store)")
    p.add_argument("--floor-n", type=int, default=100_000, help="rows of the --encode-only floor matrix")
    p.add_argument("--tmp", default=None, help="folder for the temporary stores")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "search_hybrid.json"))
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from cmr_search.indexer.model_source import fresh_model
    model = fresh_model()
    if args.encode_only:
        out = Path(args.out).with_name(Path(args.out).stem + "_encode.json")
        out.write_text(json.dumps({"about": encode_only.__doc__.split(":")[0], "threads": args.threads,
                                   "queries": args.queries, "results": encode_only(model, args)}, indent=1) + "\n")
        print(f"wrote {out}")
        return 0
    results = [run_size(int(s), args, model) for s in args.sizes.split(",")]
    Path(args.out).write_text(json.dumps({"about": __doc__.splitlines()[0], "results": results}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

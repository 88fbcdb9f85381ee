"""What sharing one embedded index between processes costs (issue #19, docs/scale.md "Several processes on
one embedded index").

    python -m bench.concurrent_read [--studies 10000] [--queries 300] [--optimize] [--keep DIR]

Builds a data folder of --studies SYNTHETIC studies with the full collection layout (four 256-d model
vectors, report text 384-d, report clauses, BM25 terms: tests.helpers.search_helpers.make_rows) through
`Store.upsert_studies`, HNSW built only with --optimize (`cmr index` builds it from 20,000 points). Then:

- held: today's way, a Store that holds the shard itself open (`write=True`); `nearest` p50/p95 over
  --queries random query vectors, unfiltered and filtered (sex=F, age 40-60);
- copy: the reading Store (`Store.open(data)`): the time to open it (copy the shard under the shared turn
  lock + load the copy), its disk, then the same queries. held and copy alternate --rounds times. The
  scheme's own cost per call, timed alone for both: the handle guard every call passes through
  (`EdgeBackend._use`: for a reader one stat of the check file + the in-process handle lock), 20,000 times;
- per-request open (design option a, not taken): load + query + close of the shard for each query;
- refresh: a writer process adds 10 studies; the reader's next query (copy again + load) and the ones after;
- two readers: two processes open copies and run the queries at the same moment (p50 of each beside one
  process alone), on this machine's cores.
Results: printed, and bench/results/concurrent_read.json. The machine may be shared: the load average at
start and end is recorded beside the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

DIM = 256
BATCH = 1000
RESULT = ROOT / "bench" / "results" / "concurrent_read.json"

READER = """
import json, sys, time
import numpy as np
from cmr_search.search import Store
t0 = time.perf_counter()
store = Store.open(sys.argv[1])
opened = time.perf_counter() - t0
Q = np.load(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
ts = []
for q in Q:
    t = time.perf_counter(); store.nearest(q, limit=10); ts.append(time.perf_counter() - t)
store.close()
print(json.dumps({"open_s": opened, "times": ts}), flush=True)
"""

ADD = """
import sys
from cmr_search.search import Store
from tests.helpers.search_helpers import make_rows
with Store.open(sys.argv[1], dim=%d) as s:
    s.upsert_studies([dict(r, study_key=f"added-{i}") for i, r in enumerate(make_rows(10, dim=%d, seed=99))])
""" % (DIM, DIM)


def pct(xs) -> dict:
    a = np.asarray(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3)}


def timed_queries(store, Q, flt=None) -> list[float]:
    ts = []
    for q in Q:
        t = time.perf_counter()
        store.nearest(q, limit=10, filters=flt)
        ts.append(time.perf_counter() - t)
    return ts


def build(data: Path, n: int, optimize: bool) -> dict:
    from cmr_search.search import Store
    from tests.helpers.search_helpers import make_rows
    t0 = time.perf_counter()
    with Store.open(data, dim=DIM) as s:
        for start in range(0, n, BATCH):
            rows = make_rows(min(BATCH, n - start), dim=DIM, seed=start)
            s.upsert_studies(dict(r, study_key=f"b{start + i:07d}") for i, r in enumerate(rows))
        if optimize:
            s.optimize()
    shard = data / "index" / "cmr_studies"
    files = [f for f in shard.rglob("*") if f.is_file()]
    return {"studies": n, "optimized": optimize, "build_s": round(time.perf_counter() - t0, 1),
            "index_mib": round(sum(f.stat().st_size for f in files) / 2**20, 1),
            "index_disk_mib": round(sum(f.stat().st_blocks * 512 for f in files) / 2**20, 1)}


def per_request_open(data: Path, Q, reps: int) -> dict:
    """On a throwaway copy of the shard: a load rewrites files of the folder it opens."""
    import qdrant_edge as qe
    path = str(data.parent / "per-request-copy")
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(data / "index" / "cmr_studies", path)
    ts = []
    for q in Q[:reps]:
        t = time.perf_counter()
        shard = qe.EdgeShard.load(path)
        shard.query(qe.QueryRequest(limit=10, query=qe.Query.Nearest(q.tolist(), using="study"),
                                    with_payload=True))
        shard.close()
        ts.append(time.perf_counter() - t)
    shutil.rmtree(path, ignore_errors=True)
    return {"reps": reps, **pct(ts)}


def guard_cost(store, n: int = 20_000) -> float:
    """Microseconds per call of the handle guard alone (no engine call inside)."""
    b = store.backend
    t = time.perf_counter()
    for _ in range(n):
        with b._use():
            pass
    return (time.perf_counter() - t) / n * 1e6


def two_readers(data: Path, qfile: Path) -> dict:
    procs = [subprocess.Popen([sys.executable, "-c", READER, str(data), str(qfile)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:                                    # both copies open: start the queries together
        p.stdin.write("go\n")
        p.stdin.flush()
    out = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    return {f"process_{i}": {"open_s": round(o["open_s"], 2), **pct(o["times"])} for i, o in enumerate(out)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--optimize", action="store_true", help="build the HNSW graph (exact search otherwise)")
    ap.add_argument("--reopen-reps", type=int, default=8, help="queries timed with an open per request")
    ap.add_argument("--rounds", type=int, default=3, help="alternations of held and copy")
    ap.add_argument("--keep", help="build (or reuse) the data folder here instead of a temp folder")
    args = ap.parse_args(argv)
    from cmr_search.search import Filter, Store
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-concurrent-"))
    data = tmp / f"data-{args.studies}{'-hnsw' if args.optimize else ''}"
    out = {"host": {"cpu": platform.machine(), "cores_visible": os.cpu_count(),
                    "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared machine: other jobs ran beside this benchmark"},
           "args": vars(args)}
    try:
        out["data"] = (build(data, args.studies, args.optimize) if not (data / "index").exists()
                       else {"studies": args.studies, "reused": str(data)})
        rng = np.random.default_rng(7)
        Q = rng.normal(size=(args.queries, DIM)).astype(np.float32)
        Q /= np.linalg.norm(Q, axis=1, keepdims=True)
        qfile = tmp / "queries.npy"
        np.save(qfile, Q)
        flt = Filter(sex="F", age=(40, 60))

        held_t, copy_t, held_f, copy_f, opens = [], [], [], [], []
        for r in range(args.rounds):                   # alternated, so that the machine's load hits both
            with Store.open(data, write=True) as held:  # today's way: the shard itself, held open
                timed_queries(held, Q[:20])
                held_t.append(timed_queries(held, Q))
                held_f.append(timed_queries(held, Q, flt))
                held_guard = guard_cost(held)
            t = time.perf_counter()
            reader = Store.open(data)                  # the reading process's way: its own copy
            opens.append(time.perf_counter() - t)
            timed_queries(reader, Q[:20])
            copy_t.append(timed_queries(reader, Q))
            copy_f.append(timed_queries(reader, Q, flt))
            if r < args.rounds - 1:
                reader.close()
        copy_disk = sum(f.stat().st_blocks * 512 for f in reader.backend._copy.rglob("*") if f.is_file())
        out["held"] = {"nearest": pct(sum(held_t, [])), "filtered": pct(sum(held_f, [])),
                       "nearest_p50_ms_per_round": [pct(x)["p50_ms"] for x in held_t],
                       "guard_us_per_call": round(held_guard, 2)}
        out["copy"] = {"open_s": [round(x, 2) for x in opens], "copy_disk_mib": round(copy_disk / 2**20, 1),
                       "nearest": pct(sum(copy_t, [])), "filtered": pct(sum(copy_f, [])),
                       "nearest_p50_ms_per_round": [pct(x)["p50_ms"] for x in copy_t],
                       "guard_us_per_call": round(guard_cost(reader), 2)}
        out["extra_ms_per_query"] = {
            "p50_difference": round(out["copy"]["nearest"]["p50_ms"] - out["held"]["nearest"]["p50_ms"], 3),
            "guard_difference": round((out["copy"]["guard_us_per_call"] - held_guard) / 1000, 4)}

        add = subprocess.run([sys.executable, "-c", ADD, str(data)], cwd=ROOT, capture_output=True, text=True)
        assert add.returncode == 0, add.stderr
        t = time.perf_counter()
        n_after = reader.count()                       # the first read after a writer copies again
        first = time.perf_counter() - t
        out["refresh"] = {"first_read_after_a_writer_s": round(first, 2), "points_seen": n_after,
                          "next_queries": pct(timed_queries(reader, Q[:100]))}
        reader.close()

        out["per_request_open"] = per_request_open(data, Q, args.reopen_reps)
        out["two_readers"] = two_readers(data, qfile)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    out["host"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

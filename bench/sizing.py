"""Sizing: memory (RSS) and disk of the embedded store per 100,000 studies, per named vector, with and
without int8 scalar quantization (search.collection.CollectionOptions(quantize=True)).

    python bench/sizing.py [--n 20000] [--dim 256] [--queries 300]

Two stores of `--n` SYNTHETIC studies, each with all four named vectors (study, cine, lge, report; vectors
around cluster centres) and the payload of a real study, built through `Store.upsert_studies` +
`Store.optimize()` (HNSW, as `cmr index` does from 20,000 points) in a child process: `float32` (the
default) and `int8` (int8 copies pinned in RAM, float32 originals left on disk for rescoring). Each is
then opened in a fresh child process that runs `--queries` nearest-neighbour queries on every vector (the
serving state) and reads its own /proc/self/smaps: resident memory per store file (vector originals,
int8 copies, HNSW graph, payload, payload indexes, ids, WAL) plus the anonymous memory the store added.
Disk: allocated blocks per store file, the same way. The same store EMPTY is measured too: the engine
library, its threads and preallocated files are a fixed cost, not a per-study one.
Every per-point file grows linearly with the number of points (n x dim x 4 bytes for the originals,
n x dim for int8, about 43 bytes a point for the graph), so the numbers are scaled linearly to 100,000;
the WAL is bounded, not per study. Results: a markdown table and bench/results/sizing.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

VECTORS = ("study", "cine", "lge", "report")
CONFIGS = {"float32": False, "int8": True}
PER = 100_000
MIB = 2 ** 20


# ---- what a store file is ---------------------------------------------------------------------------
def component(rel: str) -> str:
    """A path inside the shard folder -> what it holds ('study: originals', 'payload indexes', ...)."""
    parts = Path(rel).parts
    if "wal" in parts:
        return "wal"
    for p in parts:
        if m := re.fullmatch(r"vector_storage-(\w+)", p):
            return f"{m[1]}: int8 copy" if Path(rel).name.startswith("quantized") else f"{m[1]}: originals"
        if m := re.fullmatch(r"vector_index-(\w+)", p):
            return f"{m[1]}: hnsw graph"
        if p in ("payload_storage", "payload_index"):
            return "payload" if p == "payload_storage" else "payload indexes"
        if p.startswith("id_tracker"):
            return "ids"
    return "other files"


def disk(shard: Path) -> dict:
    out = defaultdict(float)
    for f in shard.rglob("*"):
        if f.is_file():
            out[component(str(f.relative_to(shard)))] += f.stat().st_blocks * 512 / MIB
    return {k: round(v, 2) for k, v in sorted(out.items())}


def resident(shard: Path) -> dict:
    """MiB resident per store file kind (from /proc/self/smaps) and the anonymous total."""
    out, where, anon = defaultdict(float), None, 0.0
    prefix = str(shard.resolve())
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", head[0]):
            path = head[5] if len(head) > 5 else ""
            where = component(os.path.relpath(path, prefix)) if path.startswith(prefix) else None
        elif head and head[0] == "Rss:" and where:
            out[where] += int(head[1]) / 1024
        elif head and head[0] == "Anonymous:":
            anon += int(head[1]) / 1024
    return {"files": {k: round(v, 2) for k, v in sorted(out.items())}, "anonymous": round(anon, 1)}


# ---- child processes --------------------------------------------------------------------------------
def child_build(folder: Path, quantize: bool, n: int, dim: int) -> dict:
    import numpy as np

    from cmr_search.search import Store
    from cmr_search.search.collection import CollectionOptions
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(216, dim)))
    t0 = time.perf_counter()
    with Store.open(folder, dim=dim, options=CollectionOptions(quantize=quantize)) as store:
        for s in range(0, n, 2000):
            m = min(2000, n - s)
            c = centres[rng.integers(len(centres), size=m)]
            vec = {v: _unit(c + 0.9 * rng.normal(size=c.shape) / np.sqrt(dim)) for v in VECTORS}
            store.upsert_studies(_row(s + j, {v: vec[v][j] for v in VECTORS}) for j in range(m))
        t1 = time.perf_counter()
        store.optimize()
        t2 = time.perf_counter()
    return {"upsert_s": round(t1 - t0, 1), "optimize_s": round(t2 - t1, 1)}


def _unit(a):
    import numpy as np
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def _row(i: int, vectors: dict) -> dict:
    """The payload of a real study (synthetic values): keys, demographics, scanner, views, impression."""
    return {"study_key": f"{i:020x}", "patient_key": f"{i * 7:020x}", "vectors": vectors,
            "age": float(18 + i % 72), "sex": "F" if i % 2 else "M", "study_date": f"{2005 + i % 19}-{1 + i % 12:02d}-15",
            "manufacturer": ("Siemens", "GE", "Philips")[i % 3], "model_name": "Avanto", "field_strength": 1.5,
            "views": ["cine_sax", "cine_2ch", "cine_4ch", "lge_sax"], "n_frames": 25,
            "impression": "synthetic: normal biventricular size and systolic function, no late enhancement.",
            "labels": ["normal"], "label_scores": {"normal": 0.7, "nicm": 0.2, "hcm": 0.1},
            "model_id": "cmr-tiny:000000000000", "source_fingerprint": f"{i:040x}",
            "qa": {"missing_views": [], "warnings": []}}


def child_measure(folder: Path, dim: int, queries: int) -> dict:
    import numpy as np

    import cmr_search.search.backends.edge  # noqa: F401  (the engine library: part of the baseline)
    from cmr_search.search import Store
    before = resident(folder / "index")["anonymous"]
    store = Store.open(folder)
    q = _unit(np.random.default_rng(1).normal(size=(queries, dim)))
    t0 = time.perf_counter()
    for v in VECTORS:
        for x in q:
            store.nearest(x, v, limit=10)
    ms = (time.perf_counter() - t0) * 1000 / max(1, queries * len(VECTORS))
    res = resident(folder / "index")
    res["anonymous"] = round(res["anonymous"] - before, 1)           # what opening and serving added
    res.update(points=store.count(), query_ms=round(ms, 2))
    store.close()
    return res


def _child(argv: list[str]) -> int:
    what, folder, config, n, dim, queries = argv
    out = child_build(Path(folder), CONFIGS[config], int(n), int(dim)) if what == "build" else \
        child_measure(Path(folder), int(dim), int(queries))
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def run_child(*args) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"child {args[:3]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def measure_one(config: str, n: int, dim: int, queries: int, tmp: str | None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-sizing-{config}-{n}-", dir=tmp))
    try:
        res = {"n": n, "build": run_child("build", folder, config, n, dim, queries)}
        res.update(run_child("measure", folder, config, n, dim, queries))
        res["disk"] = disk(folder / "index")
        return res
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- per 100,000 studies ------------------------------------------------------------------------------
def per_100k(full: dict, empty: dict, n: int) -> dict:
    """MiB per 100,000 studies: per named vector (originals, int8 copy, graph), payload, ids, anonymous."""
    k = PER / n

    def grow(kind: str, key: str) -> float:
        return max(0.0, full[kind].get(key, 0.0) - empty[kind].get(key, 0.0)) * k

    out = {"rss": {}, "disk": {}}
    for part in ("originals", "int8 copy", "hnsw graph"):
        out["rss"][f"vector {part}"] = round(sum(grow("files", f"{v}: {part}") for v in VECTORS) / 4, 1)
        out["disk"][f"vector {part}"] = round(sum(grow("disk", f"{v}: {part}") for v in VECTORS) / 4, 1)
    for part in ("payload", "payload indexes", "ids"):
        out["rss"][part] = round(grow("files", part), 1)
        out["disk"][part] = round(grow("disk", part), 1)
    out["rss"]["anonymous"] = round(max(0.0, full["anonymous"] - empty["anonymous"]) * k, 1)
    out["rss"]["total"] = round(sum(out["rss"][f"vector {p}"] for p in ("originals", "int8 copy", "hnsw graph")) * 4
                                + sum(out["rss"][p] for p in ("payload", "payload indexes", "ids", "anonymous")), 1)
    out["disk"]["total"] = round(sum(out["disk"][f"vector {p}"] for p in ("originals", "int8 copy", "hnsw graph")) * 4
                                 + sum(out["disk"][p] for p in ("payload", "payload indexes", "ids")), 1)
    out["wal_disk_at_n"] = round(full["disk"].get("wal", 0.0), 1)
    out["empty_store"] = {"anonymous_rss": empty["anonymous"], "disk": round(sum(empty["disk"].values()), 1)}
    return out


def table(d: dict, dim: int) -> str:
    f, q = d["float32"], d["int8"]
    rows = ["| MiB per 100,000 studies | float32 RSS | float32 disk | int8 RSS | int8 disk |", "|---|---:|---:|---:|---:|"]
    names = [("vector originals", f"each named vector: float32 originals ({dim}-d)"),
             ("vector int8 copy", "each named vector: int8 copy"), ("vector hnsw graph", "each named vector: HNSW graph"),
             ("payload", "payload (stored)"), ("payload indexes", "payload indexes (12 fields)"), ("ids", "point ids"),
             ("anonymous", "engine memory outside files (incl. pinned int8 copies)"),
             ("total", "**a study with all four vectors**")]
    for key, label in names:
        def cell(r, kind):
            v = r[kind].get(key)
            return "-" if v is None else v
        rows.append(f"| {label} | {cell(f, 'rss')} | {cell(f, 'disk')} | {cell(q, 'rss')} | {cell(q, 'disk')} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return _child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000, help="studies per store (default 20000, scaled to 100,000)")
    p.add_argument("--dim", type=int, default=256, help="vector size (cmr-tiny: 256)")
    p.add_argument("--queries", type=int, default=300, help="queries per vector before reading the memory")
    p.add_argument("--tmp", default=None, help="folder for the temporary stores")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "sizing.json"))
    a = p.parse_args(argv)
    load0 = os.getloadavg()
    doc = {"host": {"cpu": platform.processor() or platform.machine(), "cores_visible": os.cpu_count(),
                    "load_avg_at_start": load0,
                    "note": "shared machine; memory and disk do not depend on the load, build times do"},
           "n": a.n, "dim": a.dim, "scaled_to": PER, "runs": {}, "per_100k": {}}
    for config in CONFIGS:
        print(f"[{config}] {a.n:,} studies ...", flush=True)
        full = measure_one(config, a.n, a.dim, a.queries, a.tmp)
        empty = measure_one(config, 0, a.dim, a.queries, a.tmp)
        doc["runs"][config] = {"full": full, "empty": empty}
        doc["per_100k"][config] = per_100k(full, empty, a.n)
        print(f"[{config}] build {full['build']}, query {full['query_ms']} ms, {json.dumps(doc['per_100k'][config])}",
              flush=True)
    doc["host"]["load_avg_at_end"] = os.getloadavg()
    print(table(doc["per_100k"], a.dim))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load benchmark: many readers and one writer on the embedded store, then 8 browsers on `cmr ui`.

    python -m bench.load [--seconds 60] [--studies 20000] [--threads 16] [--ui-clients 8] [--parts store,ui]

Builds a data folder of SYNTHETIC studies in a temp folder: a fixed-seed cmr-tiny saved as DATA/model (so
`cmr ui` encodes queries with it) and `--studies` points whose four named vectors are drawn around
cluster centres (like embeddings, see bench/search.py), written through `Store.upsert_studies`, with the
HNSW graph built as `cmr index` builds it from 20,000 points. Then, in one process:

- store part: `--threads` client threads share one `Client` (search.connect) and issue a mixed
  workload for `--seconds`: text search on new strings (encoded by the text tower), similar-to-study,
  and refine with positive and negative feedback, while a writer thread upserts new synthetic studies
  in batches of `--write-batch` as fast as it can. Reported: p50/p95/p99 per call type and overall,
  every exception (counted as an error and printed), the reads' and the writer's throughput, and the
  final point count against the expected one. The floor: the same calls, one thread, no writer, in the
  same run, so that speed reads as a ratio.
- ui part: `cmr ui` on a free localhost port on that data folder (after the store part closed it: the
  embedded store admits one process) and `--ui-clients` Chromium pages (Debian's /usr/bin/chromium
  through Playwright; one browser per client thread) typing new queries in a loop for `--seconds`:
  latency from the click on Search to the result cards on the page, p50/p95/p99, and errors (a
  timeout or a Streamlit exception box). Floor: one page alone, first.
Results: a markdown table on stdout and bench/results/load.json. The machine may be shared: the load
average at start and end is recorded beside the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

N_CENTRES = 9 * 24          # 9 classes x 24 sub-types, as in bench/search.py
SPREAD = 0.9
VENDORS = ("Siemens", "GE", "Philips")
QUERIES = ("dilated left ventricle with reduced ejection fraction", "amyloid LGE pattern",
           "asymmetric septal hypertrophy", "inferior infarct scar", "normal study", "dilated right ventricle",
           "concentric hypertrophy", "pericardial effusion")
MIX = (("search", 0.4), ("similar", 0.3), ("refine", 0.3))     # share of each call type in the workload
MAX_ERRORS_SHOWN = 10


# ---- synthetic studies ------------------------------------------------------------------------------
class Synthetic:
    """SYNTHETIC study rows: four named vectors around shared cluster centres, a varied payload."""

    def __init__(self, dim: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim, self.rng = dim, rng
        self.centres = _unit(rng.normal(size=(N_CENTRES, dim)))

    def _near(self, c: np.ndarray) -> np.ndarray:
        return _unit(c + SPREAD * self.rng.normal(size=c.shape).astype(np.float32) / np.sqrt(self.dim))

    def rows(self, start: int, n: int, prefix: str = "syn") -> list[dict]:
        idx = np.arange(start, start + n)
        c = self.centres[self.rng.integers(len(self.centres), size=n)]
        study, cine, lge, report = (self._near(c) for _ in range(4))
        ages = self.rng.uniform(18, 90, size=n).round(0)
        return [{"study_key": f"{prefix}{i:08d}", "patient_key": f"synp{i:08d}",
                 "vectors": {"study": study[j], "cine": cine[j], "lge": lge[j] if i % 3 else None,
                             "report": report[j] if i % 4 else None},
                 "sex": "F" if i % 2 else "M", "age": float(ages[j]), "manufacturer": VENDORS[i % 3],
                 "field_strength": (1.5, 3.0)[i % 2], "views": ["cine_sax", "cine_4ch"] + (["lge_sax"] if i % 3 else []),
                 "study_date": f"{2010 + i % 14}-{1 + i % 12:02d}", "n_frames": 25,
                 "impression": f"synthetic study {i}", "model_id": "synthetic:load-bench"}
                for j, i in enumerate(idx)]


def _unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def build_data(folder: Path, n: int, model, batch: int = 2048) -> dict:
    """DATA/model (the query encoder) + DATA/index with n synthetic studies; HNSW as `cmr index` does."""
    from cmr_search.indexer.index import OPTIMIZE_AT
    from cmr_search.indexer.model_source import save_model_beside
    from cmr_search.search import Store
    from cmr_search.search.collection import model_id
    save_model_beside(model, folder, model_id(model), "bench/load.py: fixed-seed cmr-tiny (untrained)")
    syn = Synthetic(model.embed_dim)
    t0 = time.perf_counter()
    with Store.open(data=folder, dim=model.embed_dim) as store:
        for s in range(0, n, batch):
            store.upsert_studies(syn.rows(s, min(batch, n - s)))
        t1 = time.perf_counter()
        if n >= OPTIMIZE_AT:
            store.optimize()
    return {"studies": n, "upsert_s": round(t1 - t0, 1), "optimize_s": round(time.perf_counter() - t1, 1),
            "hnsw": n >= OPTIMIZE_AT}


# ---- measurement ------------------------------------------------------------------------------------
class Recorder:
    """Latencies per call type and every error, from many threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors: Counter = Counter()

    def ok(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.times.setdefault(kind, []).append(seconds)

    def error(self, kind: str, exc: BaseException) -> None:
        msg = f"{kind}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        with self.lock:
            if sum(self.errors.values()) < MAX_ERRORS_SHOWN and msg not in self.errors:
                print(f"ERROR {msg}", file=sys.stderr, flush=True)
            self.errors[msg] += 1

    def summary(self, seconds: float) -> dict:
        out = {k: pct(v) for k, v in sorted(self.times.items())}
        every = [t for v in self.times.values() for t in v]
        out["overall"] = pct(every)
        n_err = sum(self.errors.values())
        return {"calls": out, "errors": n_err, "error_rate": round(n_err / max(1, n_err + len(every)), 5),
                "error_messages": dict(self.errors), "calls_per_s": round(len(every) / seconds, 1),
                "seconds": round(seconds, 1)}


def pct(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    a = np.asarray(xs) * 1000
    return {"n": len(xs), **{f"p{q}_ms": round(float(np.percentile(a, q)), 1) for q in (50, 95, 99)}}


class Workload:
    """The mixed calls of one client thread: new text searches, similar, refine with +/- feedback."""

    def __init__(self, client, keys: list[str], seed: int):
        self.client, self.keys, self.rng, self.i, self.seed = client, keys, random.Random(seed), 0, seed
        self.kinds = [k for k, _ in MIX]
        self.weights = [w for _, w in MIX]

    def call(self) -> str:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        self.i += 1
        c, pick = self.client, self.rng.choice
        if kind == "search":
            frame = c.search(f"{pick(QUERIES)} {self.seed}.{self.i}", k=20)     # a new string: encoded
        elif kind == "similar":
            frame = c.similar(pick(self.keys), k=10)
        else:
            pos, neg = self.rng.sample(self.keys, 2), [pick(self.keys)]
            frame = c.refine(pos, [k for k in neg if k not in pos], k=20)
        if frame.height == 0:
            raise RuntimeError(f"{kind} returned no results")
        return kind


def run_calls(work: Workload, rec: Recorder, until: float | None = None, count: int | None = None) -> None:
    done = 0
    while (until is None or time.monotonic() < until) and (count is None or done < count):
        t0 = time.perf_counter()
        kind = None
        try:
            kind = work.call()
            rec.ok(kind, time.perf_counter() - t0)
        except Exception as e:                      # every exception is an error of the run
            rec.error(kind or "call", e)
        done += 1


class Writer(threading.Thread):
    """Upserts new synthetic studies in batches until stopped; counts what it wrote."""

    def __init__(self, store, syn: Synthetic, start_at: int, batch: int, rec: Recorder):
        super().__init__(daemon=True)
        self.store, self.syn, self.next, self.batch, self.rec = store, syn, start_at, batch, rec
        self.written, self.stop = 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rows = self.syn.rows(self.next, self.batch, prefix="new")
            try:
                self.written += self.store.upsert_studies(rows)
            except Exception as e:
                self.rec.error("write", e)
            self.next += self.batch


# ---- the store part ---------------------------------------------------------------------------------
def store_part(data: Path, model, args) -> dict:
    from cmr_search.search import connect
    with connect(data, model=model) as client:
        n0 = client.store.count()
        keys = [f"syn{i:08d}" for i in range(n0)]
        Workload(client, keys, seed=999).call()                 # warm-up: page cache, first encoding
        floor = Recorder()
        t0 = time.monotonic()
        run_calls(Workload(client, keys, seed=1000), floor, count=args.floor_calls)
        floor_s = time.monotonic() - t0
        print(f"floor: {args.floor_calls} calls in {floor_s:.1f} s, one thread, no writer", flush=True)
        rec = Recorder()
        writer = Writer(client.store, Synthetic(model.embed_dim, seed=7), 0, args.write_batch, rec)
        until = time.monotonic() + args.seconds
        readers = [threading.Thread(target=run_calls, args=(Workload(client, keys, seed=t), rec, until), daemon=True)
                   for t in range(args.threads)]
        t0 = time.monotonic()
        writer.start()
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        writer.stop.set()
        writer.join()
        wall = time.monotonic() - t0
        n1 = client.store.count()
    out = {"threads": args.threads, "floor": floor.summary(floor_s), "load": rec.summary(wall),
           "writer": {"points": writer.written, "points_per_s": round(writer.written / wall, 1),
                      "batch": args.write_batch},
           "points_before": n0, "points_after": n1, "count_exact": n1 == n0 + writer.written}
    out["p50_ratio"] = _ratio(out["load"]["calls"]["overall"], out["floor"]["calls"]["overall"])
    return out


def _ratio(load: dict, floor: dict) -> float | None:
    return round(load["p50_ms"] / floor["p50_ms"], 2) if load.get("n") and floor.get("n") else None


# ---- the UI part ------------------------------------------------------------------------------------
def _ui_query(page, text: str, rec: Recorder) -> None:
    from tests.helpers import browser as b
    t0 = time.perf_counter()
    try:
        run = b.run_count(page)
        t0 = time.perf_counter()
        b.submit_query(page, text)
        b.wait_results(page, run)
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(page.locator('[data-testid="stException"]').first.inner_text()[:200])
        rec.ok("ui_search", time.perf_counter() - t0)
    except Exception as e:
        rec.error("ui_search", e)


def _ui_client(url: str, idx: int, rec: Recorder, reported: threading.Semaphore, go: threading.Event,
               until: list[float], opened: list) -> None:
    """One browser: open the app, one warm-up query, report ready, then new queries until the end."""
    from tests.helpers import browser as b
    try:
        with b.browser() as page:
            b.open_app(page, url)
            _ui_query(page, f"warm-up {idx}", Recorder())
            opened.append(idx)
            reported.release()
            go.wait()
            i = 0
            while time.monotonic() < until[0]:
                i += 1
                _ui_query(page, f"{QUERIES[(idx + i) % len(QUERIES)]} {idx}.{i}", rec)
    except Exception as e:                            # the browser itself failed: one error
        rec.error("ui_client", e)
        if idx not in opened:
            reported.release()


def ui_part(data: Path, args) -> dict:
    from tests.helpers import browser as b
    if not Path(b.CHROMIUM).exists():
        return {"skipped": f"{b.CHROMIUM} is absent (apt-get install chromium)"}
    with b.serve(data) as url:
        floor = Recorder()
        with b.browser() as page:                               # floor: one page alone, no other client
            b.open_app(page, url)
            _ui_query(page, "warm-up", Recorder())
            for i in range(args.ui_floor_queries):
                _ui_query(page, f"{QUERIES[i % len(QUERIES)]} floor.{i}", floor)
        rec, opened, until = Recorder(), [], [0.0]
        reported, go = threading.Semaphore(0), threading.Event()
        threads = [threading.Thread(target=_ui_client, args=(url, i, rec, reported, go, until, opened),
                                    daemon=True) for i in range(args.ui_clients)]
        for t in threads:
            t.start()
        for _ in threads:                                       # every page open and warm (or failed)
            reported.acquire(timeout=600)
        t0 = time.monotonic()
        until[0] = t0 + args.seconds
        go.set()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    out = {"clients": args.ui_clients, "clients_started": len(opened), "floor": floor.summary(1.0),
           "load": rec.summary(wall)}
    out["floor"].pop("calls_per_s")
    out["p50_ratio"] = _ratio(out["load"]["calls"]["overall"], out["floor"]["calls"]["overall"])
    return out


# ---- report -----------------------------------------------------------------------------------------
def table(res: dict) -> str:
    lines = ["| part | call | n | p50 ms | p95 ms | p99 ms | floor p50 ms | p50 / floor | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for part in ("store", "ui"):
        r = res.get(part)
        if not r or "load" not in r:
            continue
        errs = r["load"]["errors"]
        for kind, p in r["load"]["calls"].items():
            f = r["floor"]["calls"].get(kind, {})
            ratio = _ratio(p, f)
            lines.append(f"| {part} | {kind} | {p.get('n', 0)} | {p.get('p50_ms', '-')} | {p.get('p95_ms', '-')} | "
                         f"{p.get('p99_ms', '-')} | {f.get('p50_ms', '-')} | {ratio if ratio else '-'} | "
                         f"{errs if kind == 'overall' else ''} |")
    s = res.get("store")
    if s and "load" in s:
        lines.append(f"\nstore: {s['threads']} reader threads, {s['load']['calls_per_s']} reads/s (floor, one "
                     f"thread: {s['floor']['calls_per_s']} reads/s); writer "
                     f"{s['writer']['points_per_s']} points/s ({s['writer']['points']} points); points "
                     f"{s['points_before']} -> {s['points_after']} (exact: {s['count_exact']}); error rate "
                     f"{s['load']['error_rate']}")
    u = res.get("ui")
    if u and "load" in u:
        lines.append(f"ui: {u['clients_started']}/{u['clients']} browsers, {u['load']['calls_per_s']} queries/s; "
                     f"error rate {u['load']['error_rate']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60, help="length of each loaded run (default 60)")
    p.add_argument("--studies", type=int, default=20_000, help="synthetic studies in the store (default 20000)")
    p.add_argument("--threads", type=int, default=16, help="client threads of the store part (default 16)")
    p.add_argument("--write-batch", type=int, default=32, help="studies per upsert of the writer (default 32)")
    p.add_argument("--floor-calls", type=int, default=150, help="single-threaded calls of the floor")
    p.add_argument("--ui-clients", type=int, default=8, help="simultaneous browsers of the ui part (default 8)")
    p.add_argument("--ui-floor-queries", type=int, default=8, help="queries of the one-browser floor")
    p.add_argument("--parts", default="store,ui", help="store, ui or both (default store,ui)")
    p.add_argument("--tmp", default=None, help="folder for the temporary data folder (default: system temp)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "load.json"))
    args = p.parse_args(argv)
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    import torch

    from cmr_search.indexer.model_source import fresh_model
    torch.set_num_threads(1)             # as the UI does: one thread per query on a shared machine
    res = {"host": {"cpu": platform.processor() or platform.machine(), "cores_visible": os.cpu_count(),
                    "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared machine: other jobs ran beside this benchmark"},
           "args": {k: v for k, v in vars(args).items() if k not in ("out", "tmp")}}
    folder = Path(tempfile.mkdtemp(prefix="bench-load-", dir=args.tmp))
    try:
        model = fresh_model()
        print(f"building {args.studies:,} synthetic studies in {folder} ...", flush=True)
        res["data"] = build_data(folder, args.studies, model)
        print(res["data"], flush=True)
        if "store" in parts:
            res["store"] = store_part(folder, model, args)
        if "ui" in parts:
            res["ui"] = ui_part(folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    res["host"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(table(res))
    print(f"wrote {out}")
    errors = sum(r["load"]["errors"] for r in (res.get("store"), res.get("ui")) if r and "load" in r)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

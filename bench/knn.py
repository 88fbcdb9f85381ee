"""Benchmark of exact all-pairs kNN (search/neighbours.py): faiss against the numpy floor, same run.

    python bench/knn.py [--sizes 10000,50000,100000] [--dim 256] [--k 10] [--rounds 2] [--out bench/results/knn.json]

- N SYNTHETIC random unit vectors (Gaussian, normalised, float32, `--dim` 256) per size;
- floor: numpy, blocked matrix product (query rows x all rows, one BLAS sgemm per block) + argpartition
  for the k best (`neighbours.top_k(use="numpy")`);
- engines: faiss-cpu (IndexFlatIP), and faiss-gpu (StandardGpuResources) where `faiss.get_num_gpus() > 0`;
- each study's k nearest OTHER studies (inner product = cosine), exact: recall@k of each engine against
  the floor must be 1.0 (the ids per row compared as sets; a tie could swap rows, random data has none);
- near-duplicate detection: 100 planted copies (a study plus 1% noise, cosine about 0.9999) must all be
  found in the floor's kNN by `pairs_from_knn(threshold=0.99)` and nothing else (random 256-d pairs sit
  near 0); `near_duplicate_pairs` = kNN + that step, so its time is the kNN time.
Timing: wall clock; `--rounds` interleaved rounds (floor, then each engine), the best per engine reported
(the machine may be shared: the least disturbed run), every run kept in the JSON; threads as the libraries
choose (OpenBLAS, OpenMP) on the visible cores. Results: printed, and written to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from cmr_search.search import neighbours as nb

PLANTED = 100


def vectors(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, set]:
    """n random unit vectors; the last PLANTED rows are noisy copies of the first PLANTED."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim), dtype=np.float32)
    p = min(PLANTED, n // 4)
    v[n - p:] = v[:p] + 0.01 * np.linalg.norm(v[:p], axis=1, keepdims=True) / np.sqrt(dim) \
        * rng.standard_normal((p, dim), dtype=np.float32)
    return nb.normalise(v), {(i, n - p + i) for i in range(p)}


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth))
    return hits / truth.size


def run_size(n: int, dim: int, k: int, engines: list[str], rounds: int) -> dict:
    """`rounds` rounds, each running the floor then every engine (interleaved: a burst of load from other
    processes hits both sides); the best time per engine is reported (the least disturbed), all kept."""
    v, planted = vectors(n, dim)
    times = {use: [] for use in ["numpy", *engines]}
    results = {}
    for r in range(rounds):
        for use in times:
            sec, results[use] = timed(lambda: nb.knn(v, k, use=use))
            times[use].append(round(sec, 3))
            print(f"n={n:>7}  round {r + 1}/{rounds}  {use:<10} {sec:8.2f} s", flush=True)
    floor_s, (fs, fi) = min(times["numpy"]), results["numpy"]
    row = {"n": n, "dim": dim, "k": k, "rounds": rounds, "engines": {}}
    for use, secs in times.items():
        s, i = results[use]
        row["engines"][use] = {"seconds": min(secs), "all_seconds": secs, "vs_numpy": round(floor_s / min(secs), 2),
                               "recall_vs_numpy": recall(i, fi), "max_score_diff": float(np.abs(s - fs).max())}
        print(f"n={n:>7}  {use:<10} best {min(secs):8.2f} s  x{floor_s / min(secs):.2f} the floor  "
              f"recall {row['engines'][use]['recall_vs_numpy']:.4f}", flush=True)
    sec, pairs = timed(lambda: nb.pairs_from_knn(fs, fi, 0.99))
    found = set(zip(pairs.i.tolist(), pairs.j.tolist()))
    row["duplicates"] = {"threshold": 0.99, "pairs_from_knn_s": round(sec, 4), "planted": len(planted),
                         "found": len(found & planted), "other_pairs": len(found - planted),
                         "min_planted_cosine": float(pairs.cosine.min()) if len(pairs) else None}
    print(f"n={n:>7}  duplicates {row['duplicates']}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per size; the best is reported")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "knn.json")
    args = ap.parse_args()
    import faiss
    engines = ["faiss-cpu"] + (["faiss-gpu"] if nb.engine() == "faiss-gpu" else [])
    host = {"cpu": platform.machine(), "cores_visible": len(os.sched_getaffinity(0)),
            "faiss": faiss.__version__, "faiss_gpus": faiss.get_num_gpus(), "faiss_omp_threads": faiss.omp_get_max_threads(),
            "numpy": np.__version__, "load_avg_at_start": list(os.getloadavg())}
    print(host, flush=True)
    sizes = [run_size(int(n), args.dim, args.k, engines, args.rounds) for n in args.sizes.split(",")]
    host["load_avg_at_end"] = list(os.getloadavg())
    result = {"host": host, "note": "exact all-pairs kNN (each study's k nearest others, inner product of unit "
              "vectors), SYNTHETIC random 256-d vectors; floor = numpy blocked sgemm + argpartition; "
              "vs_numpy = best floor seconds / best engine seconds over interleaved rounds", "sizes": sizes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

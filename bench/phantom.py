"""Benchmark of the synthetic archive generator: studies/s and bytes/study for each profile.

    python bench/phantom.py [--n-tiny 20 --n-bench 10 --n-demo 2] [--workers 1]

Speed is reported next to a floor measured in the same run on the same files: re-serialising every
DICOM file the generator wrote (read + write with pydicom, pixels already encoded), i.e. the cost of the
DICOM output alone. generation / floor says how much the physics (heart, rendering, report) adds.
Results: printed, and written to bench/results/phantom.json.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import pydicom

ROOT = Path(__file__).resolve().parents[1]

from cmr_search.phantom.generate import generate_archive  # noqa: E402


def dicom_floor_seconds(archive: Path) -> float:
    """Time to read and re-write every DICOM file of the archive (to memory)."""
    files = sorted(archive.rglob("*.dcm"))
    t0 = time.perf_counter()
    for f in files:
        ds = pydicom.dcmread(f)
        ds.save_as(io.BytesIO(), enforce_file_format=True)
    return time.perf_counter() - t0


def bench_profile(profile: str, n: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / profile
        t0 = time.perf_counter()
        generate_archive(out, n, profile, seed=123, workers=workers)
        gen_s = time.perf_counter() - t0
        nbytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        n_files = sum(1 for _ in out.rglob("*.dcm"))
        floor_s = dicom_floor_seconds(out)
    return {"profile": profile, "studies": n, "workers": workers, "seconds": round(gen_s, 3),
            "studies_per_s": round(n / gen_s, 3), "bytes_per_study": nbytes // n,
            "dicom_files_per_study": n_files // n, "floor_seconds": round(floor_s, 3),
            "floor_studies_per_s": round(n / floor_s, 3), "ratio_to_floor": round(gen_s / floor_s, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-tiny", type=int, default=20)
    p.add_argument("--n-bench", type=int, default=10)
    p.add_argument("--n-demo", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    rows = [bench_profile(name, n, args.workers) for name, n in
            (("tiny", args.n_tiny), ("bench", args.n_bench), ("demo", args.n_demo)) if n > 0]
    print(f"{'profile':<8}{'studies/s':>11}{'MB/study':>10}{'files/study':>13}"
          f"{'floor st/s':>12}{'gen/floor':>11}")
    for r in rows:
        print(f"{r['profile']:<8}{r['studies_per_s']:>11.2f}{r['bytes_per_study'] / 1e6:>10.2f}"
              f"{r['dicom_files_per_study']:>13}{r['floor_studies_per_s']:>12.2f}"
              f"{r['ratio_to_floor']:>11.1f}")
    result = {"machine": platform.platform(), "python": platform.python_version(), "rows": rows}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "phantom.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

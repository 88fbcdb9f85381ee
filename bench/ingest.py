"""Benchmark of `cmr prepare`: studies/s on a `demo`-profile archive, next to a floor measured in the same run.

    python bench/ingest.py [--n 10] [--workers 2] [--archive DIR] [--profile-out FILE] [--segmenter WHAT]

Floor: the same DICOM files through plain `pydicom.dcmread` + `pixel_array` (every pixel decoded once),
split by study over the same number of processes: the cost of reading the archive at all. prepare adds
the header scan, series typing, heart localisation, resampling and the compressed cache write on top.
Goal: prepare within 1.3x of the floor. The page cache is warmed (every file read once) before either
is timed. --archive reuses an archive (e.g. one made by `cmr synth --profile demo`); without it one is
generated in a temporary folder. --profile-out writes cProfile stats of a one-process prepare.

Measurements: prepare segments and measures every cine SAX stack (indexer/measurements.py). The run also
times prepare without them (segmenter=False, the cost of prepare before measurements existed) and reports
`measure_ratio` = prepare / prepare without measurements (goal <= 1.5). --segmenter: `default` (the
shipped checkpoint, Segmenter.load()), a checkpoint folder, or a config name (e.g. seg-unet-small:
untrained weights of that size, the same cost as trained ones). Default: `default`.
Results: printed, and written to bench/results/ingest.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def study_files(archive: Path) -> list[list[str]]:
    """DICOM files of each study folder (the folders holding a study.json, else top-level folders)."""
    folders = sorted({p.parent for p in archive.rglob("study.json")}) or \
        sorted(p for p in archive.iterdir() if p.is_dir())
    return [sorted(str(f) for f in d.rglob("*.dcm")) for d in folders]


def _decode_study(files: list[str]) -> int:
    import pydicom
    n = 0
    for f in files:
        n += pydicom.dcmread(f).pixel_array.size
    return n


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (pool workers are reaped at shutdown)."""
    import resource
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def floor_seconds(studies: list[list[str]], workers: int) -> float:
    """Wall time to dcmread + decode every file, one study per task, in `workers` processes."""
    t0 = time.perf_counter()
    if workers <= 1:
        for files in studies:
            _decode_study(files)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_decode_study, studies))
    return time.perf_counter() - t0


def segmenter_for(what: str):
    """--segmenter -> a Segmenter: 'default' the shipped one, a folder, or a config name (untrained)."""
    from cmr_search.model.segmentation import Segmenter
    if what == "default":
        return Segmenter.load()
    if Path(what).is_dir():
        return Segmenter.load(what)
    return Segmenter.untrained(what)


def prepare_seconds(archive: Path, workers: int, out: Path, segmenter=False) -> tuple[float, int, int]:
    from cmr_search.indexer.prepare import prepare
    reports = archive / "reports.csv"
    t0 = time.perf_counter()
    r = prepare(archive, reports if reports.exists() else None, out, workers=workers,
                salt_file=out.parent / "salt", progress=False, segmenter=segmenter)
    return time.perf_counter() - t0, r.studies.height, r.n_measured


def warm(studies: list[list[str]]) -> int:
    return sum(len(Path(f).read_bytes()) for files in studies for f in files)


def profile_prepare(archive: Path, out: Path, stats_file: str) -> None:
    import cProfile
    import pstats
    from cmr_search.indexer.prepare import prepare
    prof = cProfile.Profile()
    prof.runcall(prepare, archive, None, out, workers=1, salt_file=out.parent / "salt", progress=False)
    prof.dump_stats(stats_file)
    pstats.Stats(stats_file).sort_stats("cumulative").print_stats(25)


def run(archive: Path, workers: int, tmp: Path, profile_out: str | None, segmenter) -> dict:
    studies = study_files(archive)
    nbytes = warm(studies)
    c0 = cpu_seconds()
    floor_s = floor_seconds(studies, workers)
    c1 = cpu_seconds()
    bare_s, _, _ = prepare_seconds(archive, workers, tmp / "cache-bare")
    c2 = cpu_seconds()
    prep_s, cached, measured = prepare_seconds(archive, workers, tmp / "cache", segmenter)
    c3 = cpu_seconds()
    if profile_out:
        profile_prepare(archive, tmp / "cache-prof", profile_out)
    n = len(studies)
    return {"studies": n, "cached": cached, "measured": measured, "workers": workers,
            "segmenter": f"{segmenter.cfg.name} {segmenter.fingerprint} trained={segmenter.card.get('trained', True)}",
            "prepare_without_measurements_seconds": round(bare_s, 2), "measure_ratio": round(prep_s / bare_s, 2),
            "measure_goal_ratio": 1.5, "prepare_without_measurements_cpu_seconds": round(c2 - c1, 2),
            "files": sum(map(len, studies)),
            "mb": round(nbytes / 1e6, 1), "prepare_seconds": round(prep_s, 2),
            "prepare_studies_per_s": round(n / prep_s, 3), "floor_seconds": round(floor_s, 2),
            "floor_studies_per_s": round(n / floor_s, 3), "ratio_to_floor": round(prep_s / floor_s, 2),
            "goal_ratio": 1.3, "floor_cpu_seconds": round(c1 - c0, 2), "prepare_cpu_seconds": round(c3 - c2, 2),
            "cpu_ratio_to_floor": round((c3 - c2) / max(c1 - c0, 1e-9), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10, help="studies to generate (without --archive)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--archive", help="reuse this archive instead of generating one")
    p.add_argument("--seed", type=int, default=41)
    p.add_argument("--profile-out", help="also profile a one-process prepare into this pstats file")
    p.add_argument("--segmenter", default="default", help="default | FOLDER | config name (untrained "
                   "weights of that size; default: the shipped checkpoint)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(args.archive) if args.archive else Path(tmp) / "archive"
        if not args.archive:
            from cmr_search.phantom.generate import generate_archive
            generate_archive(archive, args.n, "demo", seed=args.seed, workers=args.workers)
        res = run(archive, args.workers, Path(tmp), args.profile_out, segmenter_for(args.segmenter))
    res |= {"archive": str(args.archive or f"generated demo n={args.n} seed={args.seed}"),
            "machine": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
    print(f"prepare {res['prepare_studies_per_s']:.3f} studies/s ({res['prepare_seconds']} s), floor "
          f"{res['floor_studies_per_s']:.3f} studies/s ({res['floor_seconds']} s): "
          f"{res['ratio_to_floor']}x the floor (goal <= 1.3x), {res['studies']} studies, "
          f"{res['files']} files, {res['workers']} workers; CPU {res['prepare_cpu_seconds']} s vs "
          f"{res['floor_cpu_seconds']} s ({res['cpu_ratio_to_floor']}x); without measurements "
          f"{res['prepare_without_measurements_seconds']} s: measurements cost {res['measure_ratio']}x (goal <= 1.5x)")
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "ingest.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`cmr synth`: generate a synthetic CMR archive, or audit one (`cmr synth audit DIR`).

    cmr synth --n 50 --profile tiny --seed 1 --out synth-archive [--workers 2] [--preview] [--no-labels]
    cmr synth audit synth-archive
    cmr synth seg --hearts 1200 --out seg-data   # randomized training slices for the segmenter

Everything written is synthetic (no real patient): study.json says so, and so does this command.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl
from tqdm import tqdm

from cmr_search.phantom.cases.latent import CLASSES
from cmr_search.phantom.generate import generate_archive, manifest_rows
from cmr_search.phantom.profiles import PROFILES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr synth", description=(
        "Generate a SYNTHETIC cardiac MRI archive: DICOM studies of an analytic beating-heart phantom, "
        "report impressions, and ground truth (study.json, manifest.parquet, reports.csv). "
        "`cmr synth audit DIR` prints the benchmark-honesty audit of an archive."))
    p.add_argument("--n", type=int, default=20, help="number of studies (default 20)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="tiny",
                   help="study size: tiny (unit tests), demo (realistic), bench (many small studies)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed => identical files")
    p.add_argument("--out", type=Path, default=Path("synth-archive"), help="output folder")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--label", choices=CLASSES, default=None,
                   help="force every study to this class (default: the archive-like class prior)")
    p.add_argument("--wording", choices=("mixed", "train", "test"), default="mixed",
                   help="report wording: mixed draws 30%% of studies in the held-out wording (default); "
                        "train / test force one split (training and evaluation sets)")
    p.add_argument("--preview", action="store_true",
                   help="also write one PNG contact sheet per study under OUT/preview/")
    p.add_argument("--no-labels", dest="labels", action="store_false",
                   help="do not write the exact label map of every image (STUDY/labels/*.npz, "
                        "written by default; see labels/README.txt)")
    return p


def write_manifest(records: list[dict], out: Path) -> Path:
    path = out / "manifest.parquet"
    pl.DataFrame(manifest_rows(records)).write_parquet(path, statistics=False)
    return path


def _progress(n: int):
    return tqdm(total=n, unit="study", desc="synthesizing", file=sys.stderr,
                disable=not sys.stderr.isatty() and n < 10)


def run_generate(args: argparse.Namespace) -> int:
    if args.n < 1:
        print("cmr synth: --n must be at least 1", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        with _progress(args.n) as bar:
            records = generate_archive(args.out, args.n, args.profile, args.seed, args.workers,
                                       args.preview, on_study=lambda _: bar.update(1),
                                       label=args.label, wording=args.wording, labels=args.labels)
    except ValueError as e:              # the folder holds another run's studies
        print(f"cmr synth: {e}", file=sys.stderr)
        return 2
    write_manifest(records, args.out)
    dt = time.perf_counter() - t0
    print(f"wrote {len(records)} SYNTHETIC studies ({args.profile} profile, seed {args.seed}) to "
          f"{args.out} in {dt:.1f} s ({len(records) / dt:.2f} studies/s)")
    if args.preview:
        print(f"contact sheets: {args.out / 'preview'}")
    return 0


def run_audit(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="cmr synth audit",
                                description="Shortcut and calibration audit of a synthetic archive.")
    p.add_argument("archive", type=Path)
    p.add_argument("--seed", type=int, default=0, help="seed of the cross-validation and bootstrap")
    args = p.parse_args(argv)
    if not args.archive.is_dir():
        print(f"cmr synth audit: {args.archive} is not a folder", file=sys.stderr)
        return 2
    # imported here: the audit's statistics (seconds to import) serve `cmr synth audit` only
    from cmr_search.phantom.audit.archive import audit_archive, format_table
    rows = audit_archive(args.archive, rng_seed=args.seed)
    print(format_table(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["audit"]:
        return run_audit(argv[1:])
    if argv[:1] == ["seg"]:
        from cmr_search.ui.synth_seg_cmd import main as seg_main   # its own parser and flags
        return seg_main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return run_generate(args)

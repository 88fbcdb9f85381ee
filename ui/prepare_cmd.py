"""`cmr prepare ARCHIVE --reports FILE --out CACHE [--workers N] [--salt-file F]`: build the study cache."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.prepare import prepare
from cmr_search.indexer.reports import ReportSummary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr prepare", description="Decode a DICOM archive (or an ACDC NIfTI "
                                "folder) once into the study cache used by training and indexing.",
                                epilog="Reports format (columns, key matching, encodings) and what bad input "
                                "does: docs/indexing.md. Exit 0 done, 1 nothing useful done (no DICOM "
                                "study, no report matched, no study cached), 2 bad usage.")
    p.add_argument("archive", help="archive folder (DICOM tree, synthetic archive or ACDC layout)")
    p.add_argument("--reports", help="reports: CSV, TSV, Parquet, JSON Lines or a folder of <accession>.txt "
                   "files, in any common encoding; format in docs/indexing.md (default: ARCHIVE/reports.csv "
                   "when it exists, as `cmr synth` writes it)")
    p.add_argument("--out", default="cmr-data/cache", help="cache folder (default: cmr-data/cache)")
    p.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    p.add_argument("--salt-file", help="secret salt for study/patient keys (default $CMR_SALT_FILE or "
                   "~/.config/cmr-search/salt.key; created on first use; keep it out of the repo)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)          # exits 2 on bad usage
    if not Path(args.archive).is_dir():
        print(f"cmr prepare: archive folder {args.archive} not found", file=sys.stderr)
        return 2
    if args.reports is None and (Path(args.archive) / "reports.csv").is_file():
        args.reports = str(Path(args.archive) / "reports.csv")
        print(f"cmr prepare: reports from {args.reports}", file=sys.stderr)
    try:
        r = prepare(args.archive, args.reports, args.out, workers=max(1, args.workers),
                    salt_file=args.salt_file, progress=not args.no_progress)
    except (IndexerError, OSError) as exc:
        print(f"cmr prepare: {exc}", file=sys.stderr)
        return 1
    print(f"cached {r.studies.height} studies in {r.out} ({r.n_assembled} built, {r.n_skipped} unchanged, "
          f"{r.n_failed} failed, {r.n_errors} errors in errors.parquet) in {r.seconds:.1f} s")
    summary = ReportSummary.load(r.out) if args.reports else None
    for line in summary.lines() if summary else ():
        print(line)
    if not r.studies.height:
        print(f"cmr prepare: no study could be cached ({r.n_failed} failed); the reasons are in "
              f"{Path(r.out) / 'errors.parquet'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`cmr audit`: print or export the audit trail of a data folder (DATA/audit.jsonl, search/audit.py).

    cmr audit                                   # the last 50 records, newest last
    cmr audit --since 2025-03-01 --kind export  # exports since that day (UTC)
    cmr audit --kind search --kind cohort --json
    cmr audit --out audit.csv                   # the whole (filtered) trail as CSV or Parquet

Every search, cohort run and export is recorded (time, user, query, mode, filters, counts, the export's file
name; never a study key or an identifier); $CMR_AUDIT=0 turns recording off. docs/privacy.md, Audit trail.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cmr_search.search.audit import EVENTS, audit_path, export_audit, read_audit
from cmr_search.search.settings import Settings
from cmr_search.ui.search_cmd import run

COLUMNS = ("time", "user", "event", "ok", "query", "mode", "view", "k", "filters", "results", "rows", "level",
           "file")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr audit", description="Print or export the audit trail of a data folder.",
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CMR_DATA or ./cmr-data)")
    p.add_argument("--since", default=None, metavar="DATE",
                   help="only records from this date or time on (2025-03-01, 2025-03-01T12:00; UTC)")
    p.add_argument("--kind", action="append", choices=EVENTS, default=None, metavar="K",
                   help=f"only these events, repeatable: {', '.join(EVENTS)}")
    p.add_argument("--last", type=int, default=50, metavar="N", help="print the last N records (default 50; 0: all)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.add_argument("--out", type=Path, default=None, help="write every matching record to a .csv or .parquet file")
    return p


def _audit(args) -> int:
    if args.out is not None and args.out.suffix not in (".csv", ".parquet"):
        print("cmr audit: --out must end in .csv or .parquet", file=sys.stderr)
        return 2
    if args.last < 0:
        print("cmr audit: --last must be 0 or more", file=sys.stderr)
        return 2
    data = Settings.from_env(data=args.data).data
    if args.out is not None:
        out = export_audit(data, args.out, since=args.since, kind=args.kind)
        print(f"audit trail of {data}: {out}")
        return 0
    frame = read_audit(data, since=args.since, kind=args.kind)
    if frame.is_empty():
        print(f"no audit records in {audit_path(data)}" + (" matching the filters" if args.since or args.kind else ""))
        return 0
    shown = frame.tail(args.last) if args.last else frame
    if args.json:
        for row in shown.iter_rows(named=True):
            print(json.dumps({k: v for k, v in row.items() if v is not None}, default=str, ensure_ascii=False))
        return 0
    table = Table(title=f"audit trail of {escape(str(data))}: {shown.height} of {frame.height} records")
    for c in COLUMNS:
        table.add_column(c, overflow="fold")
    for r in shown.iter_rows(named=True):
        table.add_row(*(escape(_cell(c, r[c])) for c in COLUMNS))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _cell(col: str, v) -> str:
    if v is None:
        return ""
    if col == "time":
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if col == "ok":
        return "" if v else "FAILED"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    return run("cmr audit", sys.argv[1:] if argv is None else argv, build_parser, _audit)

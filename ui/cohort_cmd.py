"""`cmr cohort`: save a query as a cohort and export it; re-run a saved cohort.

    cmr cohort export --query "amyloid LGE pattern" --k 100 --filter sex=F --out amyloid.csv
        -> amyloid.csv (or .parquet) + amyloid.cohort.json (the spec, ranked keys, index info)
    cmr cohort rerun amyloid.cohort.json --out amyloid-again.parquet
    --with-identifiers joins DATA/link.parquet (StudyInstanceUID, accession, path): honest-broker use only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmr_search.search import Cohort
from cmr_search.search.errors import SearchError
from cmr_search.ui.search_cmd import add_connection_args, add_query_args, open_client, parse_filters, run, settings_from


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr cohort", description="Build, export and re-run cohorts.",
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="run a query and export the cohort")
    ex.add_argument("--query", required=True, help="text query")
    add_query_args(ex, k=100)
    _common(ex)
    re = sub.add_parser("rerun", help="re-run a saved cohort spec (.cohort.json)")
    re.add_argument("spec", type=Path)
    _common(re)
    return p


def _common(p) -> None:
    p.add_argument("--out", type=Path, required=True, help="output .csv or .parquet")
    p.add_argument("--with-identifiers", action="store_true",
                   help="join DATA/link.parquet (raw identifiers): for the honest-broker step only")
    add_connection_args(p)


def _link(args, client) -> Path | None:
    if not args.with_identifiers:
        return None
    path = settings_from(args).folder.link_table
    if not path.exists():
        raise SearchError(f"--with-identifiers: no link table at {path}; it is written by `cmr prepare`.")
    return path


def _cohort(args) -> int:
    if args.out.suffix not in (".csv", ".parquet"):
        print("cmr cohort: --out must end in .csv or .parquet", file=sys.stderr)
        return 2
    with open_client(args) as client:
        if args.action == "export":
            cohort = client.cohort(args.query, k=args.k, filters=parse_filters(args.filter), mode=args.mode,
                                   view=args.view)
        else:
            cohort = Cohort.load(args.spec).rerun(client)
        cohort.export(args.out, link=_link(args, client))
    spec = cohort.save(args.out.with_suffix(".cohort.json"))
    print(f"cohort of {len(cohort.keys)} studies: {args.out} (spec: {spec})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("cmr cohort", sys.argv[1:] if argv is None else argv, build_parser, _cohort)

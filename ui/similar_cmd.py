"""`cmr similar KEY`: studies like a given study (its own vector, the study itself excluded).

    cmr similar 3f2a9c0d1e4b5a6f7081 --k 10 --view lge --filter sex=F
    cmr similar 3f2a9c0d1e4b5a6f7081 --reports       # the nearest report impressions of other studies
"""
from __future__ import annotations

import argparse
import sys

from cmr_search.ui.search_cmd import add_connection_args, open_client, parse_filters, print_table, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr similar", description="Find studies similar to a study.")
    p.add_argument("key", help="a study_key from search results (not a DICOM UID)")
    p.add_argument("--k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--view", choices=("study", "cine", "lge"), default="study", help="which vector (default study)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="payload filter, repeatable")
    p.add_argument("--reports", action="store_true", help="nearest report impressions of other studies instead")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_connection_args(p)
    return p


def _similar(args) -> int:
    filters = parse_filters(args.filter)
    with open_client(args) as client:
        if args.reports:
            frame = client.reports_for(args.key, k=args.k)
        else:
            frame = client.similar(args.key, k=args.k, view=args.view, filters=filters)
    print_table(frame, f"{'reports' if args.reports else 'studies'} like {args.key}", args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("cmr similar", sys.argv[1:] if argv is None else argv, build_parser, _similar)

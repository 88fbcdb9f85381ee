"""`cmr duplicates`: near-duplicate study pairs in the index (Client.near_duplicates): repeat studies of one
patient, or one study imported twice. Pairs are printed by study_key with their cosine, best first.

    cmr duplicates                           # cosine >= 0.98 among each study's 10 nearest
    cmr duplicates --threshold 0.995 --k 20 --view cine --json

Exit codes: 0 (pairs or none), 2 bad usage, 1 failure.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from cmr_search.search.neighbours import NeighboursTruncatedWarning
from cmr_search.ui.search_cmd import add_connection_args, open_client, parse_filters, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr duplicates", description=(
        "List pairs of studies whose vectors are near duplicates (exact kNN of every study)."))
    p.add_argument("--threshold", type=float, default=0.98, help="smallest cosine of a pair (default 0.98)")
    p.add_argument("--k", type=int, default=10, help="neighbours looked at per study (default 10)")
    p.add_argument("--view", choices=("study", "cine", "lge"), default="study", help="which vector (default study)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="only these studies, repeatable")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_connection_args(p)
    return p


def _duplicates(args) -> int:
    with open_client(args) as client, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NeighboursTruncatedWarning)
        frame = client.near_duplicates(threshold=args.threshold, k=args.k, view=args.view,
                                       filters=parse_filters(args.filter))
    for w in caught:
        print(f"cmr duplicates: note: {w.message}", file=sys.stderr)
    if args.json:
        for row in frame.iter_rows(named=True):
            print(json.dumps(row))
        return 0
    print(f"{frame.height} near-duplicate pairs (cosine >= {args.threshold:g}, {args.view} vectors)")
    for r in frame.iter_rows(named=True):
        same = {True: "same patient", False: "other patients", None: ""}[r["same_patient"]]
        print(f"  {r['study_key_a']}  {r['study_key_b']}  {r['cosine']:.4f}  {same}".rstrip())
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("cmr duplicates", sys.argv[1:] if argv is None else argv, build_parser, _duplicates)

"""`cmr cohort`: save a query as a cohort and export it; re-run a saved cohort; run and compare cohorts
defined by criteria (search/cohort_definition.py).

    cmr cohort export --query "amyloid LGE pattern" --k 100 --filter sex=F --out amyloid.csv
        -> amyloid.csv (or .parquet) + amyloid.cohort.json (the spec, ranked keys, index info)
    cmr cohort rerun amyloid.cohort.json --out amyloid-again.parquet
    --with-identifiers joins DATA/link.parquet (StudyInstanceUID, accession, path): honest-broker use only.
    cmr cohort run docs/cohorts/hfref_lge.cohort.json --level patient --out hfref.csv
        -> prints the attrition table; hfref.csv, hfref.attrition.csv, hfref.result.json (re-runnable)
    cmr cohort compare a.cohort.json b.result.json --op difference --level patient [--out d.csv]
Counts from 1 to 10 are printed and exported as "<11" (small-cell suppression).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cmr_search.search import Cohort
from cmr_search.search.cohort_definition import PER_PATIENT, CohortDefinition, read_cohort
from cmr_search.search.cohort_result import LEVELS, OPS, compare, result_path, small
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
    ru = sub.add_parser("run", help="run a cohort definition (JSON/YAML criteria) or a saved result's definition")
    ru.add_argument("file", type=Path)
    ru.add_argument("--per-patient", choices=PER_PATIENT, default=None,
                    help="one study per patient: first/last by date, best by the semantic score")
    ru.add_argument("--count-all", action="store_true",
                    help="also count the patients of the whole index for the first attrition row (one pass over every study)")
    _result_args(ru)
    co = sub.add_parser("compare", help="union, intersection or difference of two cohorts (files or results)")
    co.add_argument("a", type=Path)
    co.add_argument("b", type=Path)
    co.add_argument("--op", choices=OPS, required=True)
    _result_args(co)
    return p


def _result_args(p) -> None:
    p.add_argument("--level", choices=LEVELS, default="study", help="rows and set operations per study or patient")
    p.add_argument("--out", type=Path, default=None,
                   help="write the rows (.csv or .parquet), <stem>.attrition.csv and <stem>.result.json")
    add_connection_args(p)


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


def _bad_out(out: Path | None) -> str | None:
    """What is wrong with --out, in one line (None: usable): its suffix, or a folder that does not exist."""
    if out is None:
        return None
    if out.suffix not in (".csv", ".parquet"):
        return "--out must end in .csv or .parquet"
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        return f"--out {out}: the folder {folder} {what}; create it (mkdir -p {folder}) or give another --out"
    return None


def _cohort(args) -> int:
    if (problem := _bad_out(args.out)) is not None:               # before any query is run
        print(f"cmr cohort: {problem}", file=sys.stderr)
        return 2
    if args.action in ("run", "compare"):
        return _criteria(args)
    saved = Cohort.load(args.spec) if args.action == "rerun" else None   # checked before the index is opened
    with open_client(args) as client:
        if saved is None:
            cohort = client.cohort(args.query, k=args.k, filters=parse_filters(args.filter), mode=args.mode,
                                   view=args.view)
        else:
            cohort = saved.rerun(client)
        cohort.export(args.out, link=_link(args, client))
    spec = cohort.save(args.out.with_suffix(".cohort.json"))
    print(f"cohort of {len(cohort.keys)} studies: {args.out} (spec: {spec})")
    return 0


def _criteria(args) -> int:
    if args.action == "run":
        definition = CohortDefinition.load(args.file)              # checked before the index is opened
        with open_client(args) as client:
            res = definition.run(client, per_patient=args.per_patient, count_all=args.count_all)
            _write(res, args)
        title = definition.name
    else:
        a, b = read_cohort(args.a), read_cohort(args.b)              # both checked before the index is opened
        if isinstance(a, CohortDefinition) or isinstance(b, CohortDefinition):
            with open_client(args) as client:
                res = compare(*(x.run(client) if isinstance(x, CohortDefinition) else x for x in (a, b)),
                              args.op, args.level)
                _write(res, args)
        else:
            res = compare(a, b, args.op, args.level)
            _write(res, args)
        title = f"{args.a.name} {args.op} {args.b.name} ({args.level})"
    _print(res, title)
    return 0


def _write(res, args) -> None:
    if args.out is None:
        return
    res.export(args.out, level=args.level)
    res.save(result_path(args.out))


def _print(res, title: str) -> None:
    table = Table(title=f"{title}: attrition")
    for col in ("step", "kind", "criterion", "studies", "patients"):
        table.add_column(col, no_wrap=col != "criterion")
    for r in res.attrition_shown().iter_rows(named=True):
        table.add_row(str(r["step"]), r["kind"], r["criterion"], r["studies"], r["patients"])
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    print(f"cohort: {small(len(res.keys))} studies, {small(len(res.patient_keys))} patients")


def main(argv: list[str] | None = None) -> int:
    return run("cmr cohort", sys.argv[1:] if argv is None else argv, build_parser, _cohort)

"""`cmr search`: text -> studies, printed as a table (and the helpers the other search verbs share).

    cmr search "amyloid LGE pattern" --k 20 --filter sex=F --filter age=40..80
    cmr search "dilated LV" --mode report          # impressions; --mode hybrid fuses image + report
    cmr search "scar" --view lge --json             # LGE sub-view vector; JSON lines instead of a table

Filters (--filter key=value, repeatable): age=LO..HI, sex=F, date=2019..2020-06, vendor=Siemens,
field_strength=1.5 (or 1.4..1.6), views=cine_sax,lge_sax (all of), labels=AMYLOID,HCM (any of); the
measurements as ranges or comparisons: "lvef<35", "lv_mass>150", max_wall=13..20, "rvef>=45", lvedvi=..100
(also lvedv, lvesv, rvedv, rvesv, lvesvi, lv_massi, rvedvi, rvesvi), seg_quality=good,check (any of);
what the report states, negation-aware: findings=LGE:affirmed,HCM:family (all of; statuses affirmed,
negated, uncertain, historical, family; docs/search.md, Report reading). A
study without the measurement matches no range on it. A value no study in the index holds (sex=female
where it holds F and M) is an error listing the values it holds, exit 2 (docs/indexing.md, Bad input).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cmr_search.model.errors import ModelError
from cmr_search.model.query_text import default_runtime
from cmr_search.search import Filter, connect
from cmr_search.search.errors import SearchError
from cmr_search.search.settings import Settings


def add_connection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("index")
    g.add_argument("--data", type=Path, default=None, help="data folder (default $CMR_DATA or ./cmr-data)")
    g.add_argument("--url", default=None, help="Qdrant server URL (default $QDRANT_URL; unset = embedded)")
    g.add_argument("--api-key", default=None, help="Qdrant API key (default $QDRANT_API_KEY)")
    add_server_security_args(g)
    g.add_argument("--checkpoint", default=None,
                   help="model checkpoint folder: ours (config.json + model.safetensors) or the published "
                   "CMR-CLIP (config.json + pytorch_model.bin); default $CMR_CHECKPOINT, else DATA/model")
    add_untrained_arg(g)


def add_untrained_arg(g) -> None:
    """--untrained: the only way a config name (e.g. cmr-tiny) stands for a checkpoint."""
    g.add_argument("--untrained", action="store_true", help="allow --checkpoint to be a model config name "
                   "(e.g. cmr-tiny): an UNTRAINED model with fixed-seed random weights, for tests and demos; "
                   "alone: cmr-tiny")


def add_server_security_args(g) -> None:
    """--insecure and --tls-ca: a server URL is refused without an API key unless --insecure."""
    g.add_argument("--insecure", action="store_true", help="allow a Qdrant server without an API key "
                   "(only on a network you trust)")
    g.add_argument("--tls-ca", default=None, metavar="FILE", help="PEM bundle of a private CA that signed "
                   "the https server's certificate (default $QDRANT_TLS_CA)")


def add_query_args(p: argparse.ArgumentParser, k: int = 20) -> None:
    p.add_argument("--k", type=int, default=k, help=f"number of results (default {k})")
    p.add_argument("--mode", choices=("image", "report", "hybrid"), default="hybrid",
                   help="image vectors (the model), report text (sentence vectors + BM25 words), or all "
                   "fused (default hybrid; a study without a report is ranked by its images alone)")
    p.add_argument("--view", choices=("study", "cine", "lge"), default="study",
                   help="which image vector: all views, cine only, LGE only (default study)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="payload filter, repeatable: key=value or a comparison such as \"lvef<35\" "
                        "(see the module help)")


def settings_from(args) -> Settings:
    """The connection flags (add_connection_args) over the environment, by the search rule: --data without
    --url means the embedded index in DATA/index (search/settings.py)."""
    return Settings.for_search(data=args.data, url=args.url, api_key=args.api_key, checkpoint=args.checkpoint,
                               tls_ca=args.tls_ca, insecure=args.insecure, untrained=args.untrained)


def open_client(args):
    return connect(settings_from(args))


def parse_filters(items: list[str]):
    return Filter.parse(items) if items else None


def print_table(frame, title: str, json_lines: bool = False) -> None:
    if json_lines:
        for row in frame.iter_rows(named=True):
            print(json.dumps(row, default=str))
        return
    table = Table(title=title)
    for name, kw in (("study_key", {"no_wrap": True}), ("score", {"no_wrap": True}), ("age", {}), ("sex", {}),
                     ("date", {"no_wrap": True}), ("scanner", {}), ("views", {}), ("labels", {}),
                     ("LVEF %", {"no_wrap": True}), ("impression", {"overflow": "fold", "max_width": 48})):
        table.add_column(name, **kw)
    for r in frame.iter_rows(named=True):
        scanner = " ".join(x for x in (r.get("manufacturer"), _tesla(r.get("field_strength"))) if x)
        table.add_row(*(_cell(v) for v in (r["study_key"], r["score"], r.get("age"), r.get("sex"),
                                          r.get("study_date"), scanner, r.get("views"), r.get("labels"),
                                          _lvef(r), r.get("impression"))))
    Console(width=None if sys.stdout.isatty() else 160).print(table)     # piped: do not fold rows


def _lvef(r: dict) -> str:
    """LVEF rounded, with '?' when its quality flag says check and '!' when poor."""
    v = r.get("lvef")
    if v is None:
        return ""
    return f"{v:.0f}" + {"check": "?", "poor": "!"}.get(r.get("seg_quality") or "", "")


def _tesla(v) -> str:
    return f"{v:g}T" if v else ""


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"
    if isinstance(v, list):
        return ",".join(map(str, v))
    return str(v)


def run(prog: str, argv, build, body) -> int:
    """Parse with `build()`, run `body(args)`; SearchError -> one line (exit 2 for bad input, else 1).
    A command answers one query: the text encoder stays on numpy (ONNX Runtime's set-up costs more than
    it saves on one query; model/query_text.py), unless $CMR_TEXT_RUNTIME says otherwise."""
    default_runtime("numpy")
    try:
        args = build().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return int(body(args) or 0)
    except SearchError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2 if e.usage else 1
    except ModelError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2 if getattr(e, "usage", False) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr search", description="Find studies by a text query.",
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", help="what to look for, e.g. 'amyloid LGE pattern'")
    add_query_args(p)
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_connection_args(p)
    return p


def _search(args) -> int:
    filters = parse_filters(args.filter)
    with open_client(args) as client:
        frame = client.search(args.query, k=args.k, filters=filters, mode=args.mode, view=args.view)
        print_table(frame, f"{args.query!r} ({args.mode}, {args.view})", args.json)
        sys.stdout.flush()                  # the table shows before the index closes (a reader's copy goes)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("cmr search", sys.argv[1:] if argv is None else argv, build_parser, _search)

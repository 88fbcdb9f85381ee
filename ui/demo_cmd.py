"""`cmr demo`: the main job end to end on a SYNTHETIC archive (what `make demo` runs).

    cmr demo [--n 100] [--data cmr-data] [--profile demo-fast] [--workers 2] [--segmenter DIR] [--serve]

1. generate a synthetic archive of realistic DICOM studies into DATA/demo-archive (kept when it already
   holds the same studies);
2. `cmr index` it into the embedded store DATA/index (cache in DATA/cache, link table DATA/link.parquet,
   model weights DATA/model) with the shipped checkpoint, or an untrained cmr-tiny until one ships; every
   cine SAX stack is segmented and measured (LVEF, volumes, mass, wall: `--filter "lvef<40"`) with the
   shipped segmenter (or --segmenter), and without one the index holds no measurements (said once);
3. run three example queries and print their tables, with the synthetic ground truth of each hit;
4. say where everything went and how much disk it takes. --serve then starts the UI (`cmr ui`) when
   that command exists (the hook `make demo-ui` uses).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import polars as pl

from cmr_search.indexer.errors import IndexerError
from cmr_search.model.errors import ModelError
from cmr_search.phantom.profiles import PROFILES
from cmr_search.search import Filter, connect
from cmr_search.search.errors import SearchError
from cmr_search.search.settings import Settings
from cmr_search.ui import ui_cmd
from cmr_search.ui.search_cmd import add_untrained_arg, print_table
from cmr_search.ui.synth_cmd import main as synth

DEMO_MARK = ".cmr-demo.json"          # {n, profile, seed} of a complete demo archive
QUERIES = (
    # (title, text, kwargs of Client.search)
    ("image search", "cardiac amyloidosis with diffuse subendocardial late gadolinium enhancement",
     {"mode": "image", "view": "study"}),
    # hybrid (the default) also ranks by the measured LVEF and LV volume the query names (search/fusion.py)
    ("hybrid with measurements, men 40-80", "dilated left ventricle with severely reduced ejection fraction",
     {"mode": "hybrid", "filters": {"sex": "M", "age": (40, 80)}}),
    ("hybrid (image + report), LGE views", "asymmetric septal hypertrophy with patchy enhancement",
     {"mode": "hybrid", "view": "lge"}),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr demo", description="Generate a SYNTHETIC demo archive, index it "
                                "and run three example queries.")
    p.add_argument("--n", type=int, default=100, help="number of synthetic studies (default 100)")
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CMR_DATA or ./cmr-data)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="demo-fast",
                   help="phantom profile (default demo-fast: realistic matrices, 20-25 phases)")
    p.add_argument("--seed", type=int, default=7, help="phantom seed (default 7)")
    p.add_argument("--workers", type=int, default=2, help="processes for synthesis and decoding (default 2)")
    p.add_argument("--k", type=int, default=5, help="results per example query (default 5)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    add_untrained_arg(p)
    p.add_argument("--segmenter", default=None, help="segmenter checkpoint folder for the measurements "
                   "(default: $CMR_SEG_CHECKPOINT, else the shipped one)")
    p.add_argument("--serve", action="store_true", help="start the UI on the demo index afterwards")
    return p


def _archive_ready(arch: Path, spec: dict) -> bool:
    """True when `arch` already holds exactly this synthetic archive (written completely by _synthesize)."""
    try:
        return json.loads((arch / DEMO_MARK).read_text()) == spec and (arch / "reports.csv").exists()
    except (OSError, ValueError):
        return False


def _synthesize(arch: Path, args) -> None:
    spec = {"n": args.n, "profile": args.profile, "seed": args.seed}
    if _archive_ready(arch, spec):
        print(f"[1/3] synthetic archive {arch} already holds {args.n} {args.profile} studies: kept")
        return
    if (arch / DEMO_MARK).exists():      # a finished archive of another size, profile or seed
        shutil.rmtree(arch)
    print(f"[1/3] generating {args.n} SYNTHETIC studies ({args.profile} profile) into {arch}")
    argv = ["--n", str(args.n), "--profile", args.profile, "--seed", str(args.seed), "--out", str(arch),
            "--workers", str(args.workers)]
    code = synth(argv)                   # an interrupted earlier run of the same spec resumes
    if code == 2 and arch.exists():      # the folder held part of another run: start it afresh
        shutil.rmtree(arch)
        code = synth(argv)
    if code:
        raise RuntimeError(f"cmr synth failed (exit {code})")
    (arch / DEMO_MARK).write_text(json.dumps(spec))


def _truth(client, keys: list[str]) -> str:
    if not keys:
        return ""
    return ", ".join(str(h.payload.get("label") or "?") for h in client.store.get(keys))


def _measured(settings: Settings) -> str:
    """One line on the measurements in the demo's cache."""
    table = settings.folder.studies_table
    rows = pl.read_parquet(table) if table.exists() else pl.DataFrame()
    if "lvef" not in rows.columns:
        return "no measurements (no segmenter checkpoint)"
    return (f"{rows['lvef'].is_not_null().sum()} of {rows.height} studies measured (LVEF, volumes, mass, wall; "
            "try --filter \"lvef<40\")")


def _queries(settings: Settings, k: int) -> None:
    """The example queries on the demo's embedded index, encoded by the model it was built with."""
    with connect(settings.with_(url=None, checkpoint=str(settings.folder.model))) as client:
        for title, text, kw in QUERIES:
            kw = dict(kw)
            if "filters" in kw:
                kw["filters"] = Filter(**kw["filters"])
            frame = client.search(text, k=k, **kw)
            print_table(frame, f"{title}: {text!r}")
            print(f"  ground truth of these synthetic studies: {_truth(client, frame['study_key'].to_list())}\n")


def _du(path: Path) -> int:
    """Bytes on disk (allocated blocks: the index's preallocated files are sparse)."""
    files = [path] if path.is_file() else (f for f in path.rglob("*") if f.is_file()) if path.exists() else []
    return sum(f.stat().st_blocks * 512 for f in files)


def _where(data: Path, arch: Path) -> None:
    folder = Settings(data).folder
    parts = [(arch, "synthetic DICOM archive + reports.csv + ground truth"), (folder.cache, "study cache"),
             (folder.index, "embedded Qdrant index"), (folder.link_table, "link table (identifiers)"),
             (folder.model, "model weights the index was built with")]
    print("where the data went:")
    total = 0
    for p, what in parts:
        n = _du(p)
        total += n
        print(f"  {str(p):<40} {n / 2**20:9.1f} MiB  {what}")
    print(f"  {'total':<40} {total / 2**20:9.1f} MiB   (remove with: rm -rf {data})")


def _serve(data: Path) -> int:
    return int(ui_cmd.main(["--data", str(data)]) or 0)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.n < 1:
        print("cmr demo: --n must be at least 1", file=sys.stderr)
        return 2
    # imported here, not at the top: the indexer brings torch (seconds), and `cmr demo --help` or a usage
    # error answers at once
    from cmr_search.indexer.index import index_archive
    from cmr_search.indexer.model_source import UntrainedModelWarning
    # the demo is the embedded default: it indexes and queries DATA/index even where $QDRANT_URL is set
    settings = Settings.from_env(data=args.data, checkpoint=args.checkpoint,
                                 untrained=args.untrained).with_(url=None)
    data = settings.data
    arch = settings.folder.demo_archive
    t0 = time.monotonic()
    try:
        _synthesize(arch, args)
        t1 = time.monotonic()
        print(f"[2/3] indexing {arch} into {settings.folder.index} (embedded store)")
        with warnings.catch_warnings():
            warnings.simplefilter("once", UntrainedModelWarning)
            warnings.showwarning = lambda msg, *a, **k: print(f"cmr demo: WARNING: {msg}", file=sys.stderr)
            r = index_archive(arch, arch / "reports.csv", settings, workers=max(1, args.workers),
                              segmenter=args.segmenter)
        t2 = time.monotonic()
        print(f"      {r.n_indexed} studies indexed, {r.n_skipped} already up to date, {r.n_points} points; "
              f"model {r.model_id}")
        print(f"      measurements: {_measured(settings)}")
        print(f"[3/3] three example queries (top {args.k})")
        _queries(settings, args.k)
    except (IndexerError, ModelError, SearchError, OSError, RuntimeError) as exc:
        print(f"cmr demo: {exc}", file=sys.stderr)
        return 1
    t3 = time.monotonic()
    _where(data, arch)
    print(f"time: {t3 - t0:.0f} s (synthesis {t1 - t0:.0f} s, prepare + index {t2 - t1:.0f} s, "
          f"queries {t3 - t2:.0f} s). Search it yourself: cmr search \"dilated LV\" --data {data}")
    return _serve(data) if args.serve else 0


if __name__ == "__main__":
    sys.exit(main())

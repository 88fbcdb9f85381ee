"""Cold `cmr search`: how long a first query from the shell takes, and where the time goes.

    python -m bench.cli --data /work/prec/demo [--repeats 5] [--before-ref HEAD]     # from the repository root

Every number is the wall time of a FRESH process (nothing warm but the OS file cache), median and min over
`--repeats` runs, interleaved so that machine load hits all of them alike:

- floor: `python -c pass` (interpreter start-up: what no change to this project can remove);
- import_cli: `import cmr_search.ui.search_cmd` (what `cmr search` imports before it parses arguments);
- model_load: a process that loads the query encoder of DATA/model and encodes one text, both spaces (the
  numpy QueryEncoder + report_query of model/query_text.py); model_load_torch: the same with the CMR-CLIP
  torch model (create_model) and the sentence-transformers ReportTextEncoder, the path before the numpy one;
  model_load_onnx: the same encoders on ONNX Runtime (model/query_onnx.py), a long-lived client's first query;
- cmr_search: `cmr search QUERY --data DATA --k 5` end to end (a hybrid query, its table printed).

With --before-ref REF the cold `cmr search` is also timed on the code of that git ref (`git archive`, run
from a temporary tree that shadows the editable install: its cmr_search package is the ref's), in the same
interleaved loop. Ratios are to the floor of the same run. Goal: cold `cmr search` on the 100-study demo
index under 3 s. Results: bench/results/cli.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("phantom", "model", "search", "indexer", "ui")
HEAVY = ("torch", "transformers", "sentence_transformers", "streamlit", "sklearn", "scipy", "polars", "qdrant_edge")


def commands(data: Path, query: str) -> dict[str, list[str]]:
    py = sys.executable
    model = str(data / "model")
    return {
        "floor": [py, "-c", "pass"],
        "import_cli": [py, "-c", "import cmr_search.ui.search_cmd"],
        "model_load": [py, "-c", "from cmr_search.model.query_text import QueryEncoder, report_query, set_runtime; "
                       "set_runtime('numpy'); "                      # what a one-query `cmr search` runs
                       f"QueryEncoder.from_checkpoint({model!r}).encode(['dilated LV']); report_query('dilated LV')"],
        "model_load_onnx": [py, "-c", "from cmr_search.model.query_text import QueryEncoder, report_query, set_runtime; "
                            "set_runtime('onnx'); "                  # a long-lived client's first query
                            f"QueryEncoder.from_checkpoint({model!r}).encode(['dilated LV']); report_query('dilated LV')"],
        "model_load_torch": [py, "-c", "from cmr_search.model import create_model, embed_texts; "
                             "from cmr_search.model.report_text import ReportTextEncoder; "
                             f"embed_texts(create_model({model!r}), ['dilated LV']); "
                             "ReportTextEncoder().encode_query('dilated LV')"],
        "cmr_search": [py, "-m", "cmr_search.ui.cli", "search", query, "--data", str(data), "--k", "5"],
    }


def before_tree(ref: str, tmp: Path) -> Path:
    """The package of git `ref` in tmp/pkg/cmr_search (symlinks to an extracted tree): PYTHONPATH=tmp/pkg
    makes `cmr_search.*` import from it ahead of the editable install's finder."""
    src = tmp / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = tmp / "pkg" / "cmr_search"
    pkg.mkdir(parents=True)
    for name in PACKAGES:
        (pkg / name).symlink_to(src / name, target_is_directory=True)
    return tmp / "pkg"


def wall(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return dt


def loaded_modules(data: Path, query: str, env: dict) -> dict:
    """Which heavy modules a `cmr search` process imports, and what it prints on stderr."""
    code = ("import sys, runpy; sys.argv = ['cmr', 'search', %r, '--data', %r, '--k', '5']\n"
            "from cmr_search.ui.cli import main\nrc = main(sys.argv[1:])\n"
            "print('MODULES', sorted(m for m in %r if m in sys.modules), file=sys.stderr)") % (query, str(data), HEAVY)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    lines = r.stderr.splitlines()
    mods = next(ln for ln in lines if ln.startswith("MODULES"))
    return {"heavy_imported": eval(mods.split(" ", 1)[1]),                  # noqa: S307  our own print
            "stderr_lines": [ln for ln in lines if not ln.startswith("MODULES")][:5]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="an indexed data folder (DATA/index, DATA/model)")
    p.add_argument("--query", default="dilated LV with reduced ejection fraction")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--before-ref", default=None, help="also time cold `cmr search` on this git ref")
    p.add_argument("--skip-torch", action="store_true", help="leave out model_load_torch (slow)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "cli.json"))
    args = p.parse_args(argv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmds = commands(args.data.resolve(), args.query)
    if args.skip_torch:
        cmds.pop("model_load_torch")
    tmp = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    envs = {name: env for name in cmds}
    try:
        if args.before_ref:
            pkg = before_tree(args.before_ref, tmp)
            cmds["cmr_search_before"] = cmds["cmr_search"]
            envs["cmr_search_before"] = {**env, "PYTHONPATH": str(pkg)}
        for name in cmds:                                      # warm the file cache; fail early
            wall(cmds[name], envs[name])
        times = {name: [] for name in cmds}
        for _ in range(args.repeats):
            for name, cmd in cmds.items():
                times[name].append(wall(cmd, envs[name]))
        modules = {"after": loaded_modules(args.data.resolve(), args.query, env)}
        if args.before_ref:
            modules["before"] = loaded_modules(args.data.resolve(), args.query, envs["cmr_search_before"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    floor = statistics.median(times["floor"])
    res = {"about": __doc__.splitlines()[0], "data": str(args.data), "query": args.query,
           "repeats": args.repeats, "before_ref": args.before_ref,
           "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
           "seconds": {n: {"median": round(statistics.median(t), 3), "min": round(min(t), 3)} for n, t in times.items()},
           "ratio_to_floor": {n: round(statistics.median(t) / floor, 1) for n, t in times.items() if n != "floor"},
           "goal": "cold `cmr search` on the 100-study demo index under 3 s",
           "goal_met": statistics.median(times["cmr_search"]) < 3.0, "modules": modules}
    print(json.dumps(res, indent=1))
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

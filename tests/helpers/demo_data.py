"""A small indexed phantom data folder for the browser test, the screenshots and the UI bench:
synth N tiny studies -> prepare the cache -> embed with a fresh cmr-tiny -> index (ui/app/indexing.py).

    python -m tests.helpers.demo_data OUT [--n 12] [--seed 3]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build(out: str | Path, n: int = 12, seed: int = 3) -> Path:
    """OUT/archive (phantom DICOM) and OUT/data (cache, model, index); reuses what is already there."""
    out = Path(out)
    data = out / "data"
    if (data / "index").exists() and (data / "model").exists():
        return data
    os.environ.setdefault("CMR_SALT_FILE", str(out / "salt.key"))
    archive = out / "archive"
    if not (archive / "reports.csv").exists():
        from cmr_search.ui.cli import main
        if main(["synth", "--n", str(n), "--profile", "tiny", "--seed", str(seed), "--out", str(archive)]):
            raise RuntimeError("cmr synth failed")
    from cmr_search.indexer.prepare import prepare
    prepare(archive, archive / "reports.csv", data / "cache", progress=False)
    from cmr_search.ui.app.indexing import build_demo
    return build_demo(data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.helpers.demo_data", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=12)
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args(argv)
    print(build(a.out, a.n, a.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

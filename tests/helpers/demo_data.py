"""A small indexed phantom data folder for the workbench tests, the browser test, the screenshots and the
UI bench: synth N tiny SYNTHETIC studies -> prepare the cache -> embed with a fresh cmr-tiny through
`cmr index`'s pipeline -> index (+ zero-shot labels). The cache is measured with an untrained segmenter
(Segmenter.untrained(): the values are meaningless, but every column, mask and payload field is there).

    python -m tests.helpers.demo_data OUT [--n 12] [--seed 3]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from cmr_search.indexer.index import index_archive
from cmr_search.indexer.prepare import prepare
from cmr_search.model import create_model
from cmr_search.model.segmentation import Segmenter
from cmr_search.search import connect
from cmr_search.search.settings import Settings
from cmr_search.ui.cli import main as cmr
from cmr_search.ui.label_cmd import DEFAULT_PROMPTS


def build_demo(data: str | Path, seed: int = 0, label: bool = True) -> Path:
    """Index DATA/cache with a fresh (untrained, fixed-seed) cmr-tiny through `cmr index`'s pipeline,
    which saves the weights to DATA/model; then write zero-shot labels (`cmr label`'s default prompts)
    so that label filters, facets and the map have values. Always the embedded index of DATA."""
    settings = Settings.for_search(data=Path(data))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model("cmr-tiny").eval()
    index_archive(None, settings=settings, model=model, progress=False, prepare_cache=False)
    if label:
        with connect(settings, model=model) as client:
            client.label(DEFAULT_PROMPTS, write=True)
    return settings.data


def build(out: str | Path, n: int = 12, seed: int = 3) -> Path:
    """OUT/archive (phantom DICOM) and OUT/data (cache, model, index); reuses what is already there."""
    out = Path(out)
    folder = Settings(out / "data").folder
    if folder.index.exists() and folder.model.exists():
        return folder.root
    os.environ.setdefault("CMR_SALT_FILE", str(out / "salt.key"))
    archive = out / "archive"
    if not (archive / "reports.csv").exists():
        if cmr(["synth", "--n", str(n), "--profile", "tiny", "--seed", str(seed), "--out", str(archive)]):
            raise RuntimeError("cmr synth failed")
    prepare(archive, archive / "reports.csv", folder.cache, progress=False, segmenter=Segmenter.untrained())
    return build_demo(folder.root)


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

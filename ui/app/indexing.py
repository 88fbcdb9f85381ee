"""Study embeddings for the app, through the indexer (architecture.md §2).

    build_demo(data)               # a small self-contained data folder: model + index (+ zero-shot labels)

It goes through indexer/index.py (`cmr index`); uploads go through indexer.query_by_example (embed_study), with
the same clips and video tower, so an uploaded study lands in the index's space.
"""
from __future__ import annotations

from pathlib import Path

import torch

from cmr_search.indexer.index import index_archive
from cmr_search.model import create_model
from cmr_search.search import connect
from cmr_search.search.settings import Settings
from cmr_search.ui.label_cmd import DEFAULT_PROMPTS


def build_demo(data: str | Path, seed: int = 0, label: bool = True) -> Path:
    """Index DATA/cache with a fresh (untrained, fixed-seed) cmr-tiny through `cmr index`'s pipeline,
    which saves the weights to DATA/model; then write zero-shot labels (`cmr label`'s default prompts)
    so that label filters, facets and the map have values. For demos and tests only."""
    data = Path(data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model("cmr-tiny").eval()
    index_archive(None, data=data, model=model, progress=False, prepare_cache=False)
    if label:
        with connect(Settings.for_search(data=data), model=model) as client:
            client.label(DEFAULT_PROMPTS)
    return data

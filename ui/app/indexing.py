"""Study embeddings for the app, through the indexer (architecture.md §2).

    embed_views(model, views)      # one study's cache arrays -> {"study", "cine"[, "lge"]} unit vectors
    build_demo(data)               # a small self-contained data folder: model + index (+ zero-shot labels)

Both go through indexer/index.py (`cmr index`): the same clips (study = all views, cine = LGE masked,
lge = cine masked) and the same video tower, so an uploaded study lands in the index's space.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def embed_views(model, views: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One study's cache arrays -> its image vectors (absent views give no vector)."""
    from indexer.index import embed_batch, study_clips
    vecs = embed_batch(model, [study_clips(views, model.clip_spec)], [None], model.device)[0]
    return {k: v for k, v in vecs.items() if v is not None}


def build_demo(data: str | Path, seed: int = 0, label: bool = True) -> Path:
    """Index DATA/cache with a fresh (untrained, fixed-seed) cmr-tiny through `cmr index`'s pipeline,
    which saves the weights to DATA/model; then write zero-shot labels (`cmr label`'s default prompts)
    so that label filters, facets and the map have values. For demos and tests only."""
    import torch

    from indexer.index import index_archive
    from model import create_model
    data = Path(data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model("cmr-tiny").eval()
    index_archive(None, data=data, model=model, progress=False, prepare_cache=False)
    if label:
        from search import connect
        from ui.label_cmd import DEFAULT_PROMPTS
        with connect(data, model=model) as client:
            client.label(DEFAULT_PROMPTS)
    return data

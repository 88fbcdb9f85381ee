"""Helpers shared by the model, search and ui tests (tests.helpers.model_helpers)."""
from __future__ import annotations

import torch


def small_config(kind: str = "tiny", **video):
    """A cmr-tiny-shaped config with a short 16-frame clip at 32 px (fast tests)."""
    from dataclasses import replace
    from cmr_search.model.config import load_config
    cfg = load_config("cmr-tiny")
    layout = [["cine_sax", 6], ["cine_2ch", 2], ["cine_3ch", 2], ["cine_4ch", 2], ["lge_sax", 2],
              ["lge_2ch", 1], ["lge_3ch", 1]]
    v = replace(cfg.video, num_frames=16, **video)
    if kind == "spacetime":
        v = replace(v, kind="spacetime", width=32, depth=2, heads=4, patch_size=8, img_size=32, in_chans=1,
                    norm_mean=(0.5,), norm_std=(0.25,), **video)
    return replace(cfg, video=v, clip={"layout": layout, "size": 32})


def random_batch(cfg, B: int = 4, seed: int = 0, missing_lge: bool = True):
    """(frames, view_ids, mask) for a config's clip spec; sample 0 misses its LGE views."""
    from cmr_search.model.preprocess import VIEW_ID
    spec = cfg.clip_spec()
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(B, spec.n_frames, spec.size, spec.size, generator=g)
    ids = torch.tensor([VIEW_ID[v] for v, n in spec.layout for _ in range(n)]).expand(B, -1).clone()
    mask = torch.ones(B, spec.n_frames, dtype=torch.bool)
    if missing_lge:
        mask[0, ids[0] >= VIEW_ID["lge_sax"]] = False
    return frames, ids, mask

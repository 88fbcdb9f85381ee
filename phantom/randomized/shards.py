"""Training shards of randomized synthetic slices: `write_shards(out, hearts, seed, workers)`.

One shard per `per_shard` hearts: shard-NNNNN.npz with images (N, H, W) float16 and labels (N, H, W)
uint8 (ACDC convention). Every heart draws from its own stream (seed, heart index), so the same seed
gives the same shards whatever the number of workers. A finished shard is never rewritten (resumable).
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cmr_search.phantom.imaging.labels import seg_labels
from cmr_search.phantom.randomized import appearance, scene
from cmr_search.phantom.randomness import study_rng

STREAM = 41


def sample_slices(seed: int, index: int, n: int, cfg: scene.SceneConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """n random cuts through heart `index` of `seed`: images (n, H, W) float32, labels (n, H, W) uint8."""
    cfg = cfg or scene.SceneConfig()
    rng = study_rng(seed, index, STREAM)
    heart, frame = scene.draw_heart(rng, index, cfg.rv_variety, cfg.lv_variety, cfg.trab_variety,
                                     cfg.trab_cap)
    warp = scene.Warp(rng, frame.origin, cfg)
    images, labels = [], []
    for _ in range(n):
        c = scene.cut(heart, frame, warp, rng, cfg)
        on_heart = seg_labels(c.tissue[c.tissue.shape[0] // 2]) > 0
        images.append(appearance.render(c.tissue, c.lge, cfg.oversample, rng, on_heart, cfg.random_contrast_p,
                                         cfg.blood_variety, cfg.min_blood_contrast))
        labels.append(seg_labels(c.centre))
    return np.stack(images), np.stack(labels)


def _write_one(args) -> str:
    out, shard, seed, first, count, per_heart, cfg = args
    path = Path(out) / f"shard-{shard:05d}.npz"
    if path.exists():
        return path.name
    imgs, labs = zip(*(sample_slices(seed, i, per_heart, cfg) for i in range(first, first + count)))
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, images=np.concatenate(imgs).astype(np.float16), labels=np.concatenate(labs))
    os.replace(tmp, path)
    return path.name


def write_shards(out: str | Path, hearts: int = 2000, seed: int = 0, workers: int = 2, per_heart: int = 12,
                 per_shard: int = 50, progress=None, cfg: scene.SceneConfig | None = None) -> Path:
    """Write hearts x per_heart slices into `out` (created); returns the folder."""
    cfg = cfg or scene.SceneConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), s, seed, first, min(per_shard, hearts - first), per_heart, cfg)
            for s, first in enumerate(range(0, hearts, per_shard))]
    (out / "recipe.json").write_text(json.dumps({"generator": "cmr_search.phantom.randomized", "seed": seed,
                                                 "hearts": hearts, "per_heart": per_heart,
                                                 "scene": cfg.__dict__}, indent=2, default=list))
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for name in pool.map(_write_one, jobs):
            if progress:
                progress(name)
    return out

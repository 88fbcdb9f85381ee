"""The floor of issue 17: the same segmenter recipe trained on the phantom as it renders by default
(realistic bSSFP cine SAX, phantom.imaging.render) instead of the randomized mode, then scored on ACDC.

    python -m bench.seg_floor --studies 150 --steps 600 --out runs/seg-floor     # then bench.real_measure --checkpoint runs/seg-floor/ckpt

Slices: the cine SAX series of `--studies` SYNTHETIC studies (profile `bench`: 96 px at 2.2-2.8 mm),
`--per-study` random (slice, frame) pairs each, with their exact label maps (RenderedSeries.tissue ->
imaging.labels.seg_labels), resampled to the segmenter's 2 mm pixels and cut to 96 x 96 around the image
centre (the SAX planes are centred on the LV axis) with a random offset of up to 20 px, written as the same
shards `cmr synth seg` writes; then model.segmentation.train with the same recipe as the randomized run
it is compared with (same slice count and steps: the pilot of docs/segmentation.md).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from cmr_search.model.segmentation.train import SegRecipe, train  # noqa: E402
from cmr_search.phantom.generate import simulate_study  # noqa: E402
from cmr_search.phantom.imaging.labels import seg_labels  # noqa: E402
from cmr_search.phantom.profiles import get_profile  # noqa: E402

SIZE, PIXEL_MM, MAX_OFFSET = 96, 2.0, 20


def _crop(a: np.ndarray, r: int, c: int) -> np.ndarray:
    """SIZE x SIZE window centred at (r, c), zero-padded where it leaves the image."""
    pad = SIZE
    p = np.pad(a, pad)
    r0, c0 = r + pad - SIZE // 2, c + pad - SIZE // 2
    return p[r0:r0 + SIZE, c0:c0 + SIZE]


def study_slices(seed: int, index: int, per_study: int, rng) -> tuple[np.ndarray, np.ndarray]:
    sim = simulate_study(seed, index, get_profile("bench"))
    cine = next(s for s in sim["series"] if s.kind == "cine_sax")
    zoom = cine.planes[0].pixel_spacing / PIXEL_MM
    images, labels = [], []
    for _ in range(per_study):
        s, f = rng.integers(cine.images.shape[0]), rng.integers(cine.images.shape[1])
        img = ndimage.zoom(cine.images[s, f], zoom, order=1)
        lab = ndimage.zoom(seg_labels(cine.tissue[s, f]), zoom, order=0)
        r, c = (np.array(img.shape) // 2 + rng.integers(-MAX_OFFSET, MAX_OFFSET + 1, 2))
        images.append(_crop(img, r, c))
        labels.append(_crop(lab, r, c))
    return np.stack(images), np.stack(labels)


def write_floor_shards(out: Path, studies: int, per_study: int, seed: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = [study_slices(seed, i, per_study, rng) for i in range(studies)]
    np.savez(out / "shard-00000.npz", images=np.concatenate([p[0] for p in pairs]).astype(np.float16),
             labels=np.concatenate([p[1] for p in pairs]))
    (out / "recipe.json").write_text(json.dumps({"generator": "bench.seg_floor (realistic phantom rendering)",
                                                 "studies": studies, "per_study": per_study, "seed": seed,
                                                 "profile": "bench"}, indent=2))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.seg_floor", description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=150)
    p.add_argument("--per-study", type=int, default=16)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/seg-floor"))
    a = p.parse_args(argv)
    data = write_floor_shards(a.out / "data", a.studies, a.per_study, a.seed)
    ck = train(SegRecipe(data=str(data), out=str(a.out / "ckpt"), steps=a.steps, warmup=50,
                         save_every=a.steps, threads=a.threads))
    print(f"floor checkpoint: {ck}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

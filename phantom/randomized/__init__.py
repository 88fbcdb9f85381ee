"""Domain-randomized rendering for training a segmenter on synthetic hearts only.

    images, labels = sample_slices(seed, heart_index, n)     # (n, H, W) float32, (n, H, W) uint8
    write_shards(out_dir, hearts=2000, seed=0, workers=2)     # .npz shards for `cmr train --task seg`

scene.py draws the anatomy (shape, pose, deformation, cut), appearance.py draws the contrast and the
acquisition; labels follow the ACDC convention (imaging/labels.py). The realistic bSSFP / LGE
rendering (imaging/render.py) stays the default for archives; this mode is for training.
"""
from .shards import sample_slices, write_shards

__all__ = ["sample_slices", "write_shards"]

"""The study clip contract: how a whole CMR study becomes one video for the model.

The indexer decodes DICOM once into per-view arrays (the study cache); `build_clip` turns those arrays
into the model's input following a `ClipSpec`, which a checkpoint stores as `preprocess.json`.

Cache arrays per study (all float16, intensity-normalised to ~[0, 1] per series, cropped around the heart,
resampled to `CACHE_SPACING_MM` square pixels, `CACHE_SIZE` x `CACHE_SIZE`):
    cine_sax   (CACHE_PHASES, H, W)  mid-ventricular SAX slice over one cardiac cycle (ED first)
    cine_2ch   (CACHE_PHASES, H, W)  | cine long-axis views, same phase sampling
    cine_3ch   (CACHE_PHASES, H, W)  |
    cine_4ch   (CACHE_PHASES, H, W)  |
    lge_sax    (CACHE_LGE_SLICES, H, W)  LGE SAX stack resampled base -> apex
    lge_2ch / lge_3ch / lge_4ch  (1, H, W)
A view that the study lacks is simply absent; `build_clip` masks it.
No horizontal flips anywhere (anatomy is not mirror-symmetric).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import zoom

VIEWS = ("cine_sax", "cine_2ch", "cine_3ch", "cine_4ch", "lge_sax", "lge_2ch", "lge_3ch", "lge_4ch")
VIEW_ID = {v: i for i, v in enumerate(VIEWS)}   # the view embedding index of each frame
CINE_VIEWS = VIEWS[:4]
LGE_VIEWS = VIEWS[4:]

CACHE_SIZE = 96            # px, square crop stored in the cache
CACHE_SPACING_MM = 1.6     # mm per pixel in the cache (154 mm field of view around the heart)
CACHE_PHASES = 20          # cine frames per cycle in the cache (resampled from the acquired phases)
CACHE_LGE_SLICES = 8       # LGE SAX slices in the cache (resampled base -> apex)


@dataclass(frozen=True)
class ClipSpec:
    """Frame layout of the model input: which frames of which view, at what size."""
    # (view, number of frames) in clip order; cine views take frames evenly over the cycle,
    # lge_sax takes slices evenly base -> apex.
    layout: tuple[tuple[str, int], ...] = (
        ("cine_sax", 12), ("cine_2ch", 4), ("cine_3ch", 4), ("cine_4ch", 4),
        ("lge_sax", 5), ("lge_2ch", 1), ("lge_3ch", 1), ("lge_4ch", 1),
    )
    size: int = 64                        # px, frames resized from CACHE_SIZE to size x size
    spacing_mm: float = CACHE_SPACING_MM * CACHE_SIZE / 64   # mm per pixel after the resize

    @property
    def n_frames(self) -> int:
        return sum(n for _, n in self.layout)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def from_json(cls, path: str | Path) -> "ClipSpec":
        d = json.loads(Path(path).read_text())
        return cls(layout=tuple((v, int(n)) for v, n in d["layout"]), size=int(d["size"]),
                   spacing_mm=float(d["spacing_mm"]))


def _pick(n_avail: int, n_want: int) -> np.ndarray:
    """Indices of n_want frames spread evenly over n_avail (repeats when n_avail < n_want)."""
    return np.floor(np.arange(n_want) * n_avail / n_want).astype(int)


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) -> (N, size, size) by area-averaging / bilinear zoom."""
    if frames.shape[-1] == size and frames.shape[-2] == size:
        return frames
    f = (1, size / frames.shape[-2], size / frames.shape[-1])
    return zoom(frames.astype(np.float32), f, order=1)[:, :size, :size]


def build_clip(views: dict[str, np.ndarray], spec: ClipSpec = ClipSpec(),
               drop: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cache arrays of one study -> model input.

    views: view name -> (N, H, W) array (see module docstring); missing views absent.
    drop: view names to mask out on purpose (view dropout; cine-only / LGE-only embeddings).
    Returns frames (F, size, size) float32, view_ids (F,) int64, mask (F,) bool (True = real frame).
    """
    frames, ids, mask = [], [], []
    for view, n in spec.layout:
        arr = views.get(view)
        present = arr is not None and len(arr) > 0 and view not in drop
        if present:
            frames.append(_resize(np.asarray(arr)[_pick(len(arr), n)], spec.size))
        else:
            frames.append(np.zeros((n, spec.size, spec.size), np.float32))
        ids += [VIEW_ID[view]] * n
        mask += [present] * n
    return (np.concatenate(frames).astype(np.float32), np.asarray(ids, np.int64),
            np.asarray(mask, bool))

"""Images of cached studies: animated cine GIFs and LGE stills, built with PIL and kept on disk.

    cine_gif(data, key, arrays_path, "cine_sax")     # DATA/thumbs/<key>/cine_sax.gif (one cardiac cycle)
    lge_png(data, key, arrays_path, slice_index)     # DATA/thumbs/<key>/lge_sax_<i>.png
    overlay_png(data, key, arrays_path, mask_path, 0)  # the mid-slice masks over the cine at ED (1: ES)
    overlay_cine_gif(data, key, arrays_path, seg)      # the cine loop, every frame segmented and drawn over

Cache arrays are float16 in ~[0, 1] (model/preprocess.py); files are written once (atomically) and reused.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from cmr_search.indexer.cache import load_arrays, load_masks
from cmr_search.model.atomic import atomic_write
from cmr_search.model.preprocess import CACHE_SPACING_MM
from cmr_search.search.data_folder import DataFolder

THUMB_PX = 128            # thumbnails are upscaled from the 96 px cache crop for legibility
FRAME_MS = 60             # per cine frame: 20 phases ~ 1.2 s per cycle
# overlay colours of the segmenter's labels (model/segmentation LABELS): RV cavity, LV myocardium, LV cavity
MASK_COLOURS = {1: (60, 140, 255), 2: (60, 220, 90), 3: (255, 70, 60)}
MASK_ALPHA = 0.3          # fill opacity; the border of each structure is drawn opaque


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(np.asarray(a, np.float32)), 0, 1) * 255).astype(np.uint8)


def _frame(a: np.ndarray, px: int) -> Image.Image:
    return Image.fromarray(_to_uint8(a), "L").resize((px, px), Image.BILINEAR)


def gif_bytes(frames: np.ndarray, px: int = THUMB_PX, ms: int = FRAME_MS) -> bytes:
    """(T, H, W) in [0, 1] -> an animated, looping GIF."""
    imgs = [_frame(f, px) for f in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=ms, loop=0)
    return buf.getvalue()


def png_bytes(image: np.ndarray, px: int = THUMB_PX) -> bytes:
    buf = io.BytesIO()
    _frame(image, px).save(buf, "PNG")
    return buf.getvalue()


def _cached(path: Path, make) -> Path:
    """`path`, written once from make() (bytes) through model.atomic.atomic_write (no fsync: a thumbnail
    lost to a crash is simply made again)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, make(), fsync=False)
    return path


def load_views(cache: Path, array_path: str) -> dict[str, np.ndarray]:
    return load_arrays(cache, array_path)


def _thumb_dir(data: Path, key: str) -> Path:
    if not key.replace("-", "").replace("_", "").isalnum():          # keys become folder names
        raise ValueError(f"unexpected study key {key!r}")
    return DataFolder(data).thumbs / key


def cine_gif(data: Path, key: str, array_path: str, view: str = "cine_sax", px: int = THUMB_PX) -> Path | None:
    """The cine loop of `view` as a GIF file, or None when the study lacks the view."""
    path = _thumb_dir(data, key) / f"{view}_{px}.gif"
    if path.exists():
        return path
    views = load_views(DataFolder(data).cache, array_path)
    if view not in views:
        return None
    return _cached(path, lambda: gif_bytes(views[view], px))


def lge_png(data: Path, key: str, array_path: str, index: int | None = None, view: str = "lge_sax",
            px: int = THUMB_PX) -> Path | None:
    """One LGE slice (default the middle one) as a PNG file, or None when the study lacks the view."""
    path = _thumb_dir(data, key) / f"{view}_{'mid' if index is None else index}_{px}.png"
    if path.exists():
        return path
    views = load_views(DataFolder(data).cache, array_path)
    if view not in views:
        return None
    i = len(views[view]) // 2 if index is None else index
    if not 0 <= i < len(views[view]):
        return None
    return _cached(path, lambda: png_bytes(views[view][i], px))


def overlay_rgb(image: np.ndarray, labels: np.ndarray, px: int = THUMB_PX) -> Image.Image:
    """A grey frame in [0, 1] with the labels drawn over it (translucent fill, opaque border), px x px."""
    grey = _to_uint8(image)
    if labels.shape != grey.shape:                                   # a mask of another grid: nearest
        labels = np.asarray(Image.fromarray(labels).resize(grey.shape[::-1], Image.NEAREST))
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    for lab, colour in MASK_COLOURS.items():
        inside = labels == lab
        if not inside.any():
            continue
        border = inside & ~ndimage.binary_erosion(inside)
        rgb[inside] = (1 - MASK_ALPHA) * rgb[inside] + MASK_ALPHA * np.array(colour, np.float32)
        rgb[border] = colour
    return Image.fromarray(rgb.astype(np.uint8), "RGB").resize((px, px), Image.NEAREST)


def overlay_bytes(image: np.ndarray, labels: np.ndarray, px: int = THUMB_PX) -> bytes:
    """overlay_rgb as PNG bytes."""
    buf = io.BytesIO()
    overlay_rgb(image, labels, px).save(buf, "PNG")
    return buf.getvalue()


def overlay_gif_bytes(frames: np.ndarray, labels: np.ndarray, px: int = THUMB_PX, ms: int = FRAME_MS) -> bytes:
    """(T, H, W) frames and (T, H, W) labels -> an animated GIF of the overlays."""
    imgs = [overlay_rgb(f, lab, px) for f, lab in zip(frames, labels)]
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=ms, loop=0)
    return buf.getvalue()


def overlay_cine_gif(data: Path, key: str, array_path: str, seg, px: int = THUMB_PX) -> Path | None:
    """The cached cine SAX loop (the mid slice) with every frame segmented by `seg` (a Segmenter: its
    `segment(frames, spacing_mm)` resamples to its own grid) and drawn over it, as a GIF kept per segmenter;
    None when the study has no cine_sax view. ~20 images a study, segmented when the page first asks."""
    path = _thumb_dir(data, key) / f"seg_cine_{seg.fingerprint[:12]}_{px}.gif"
    if path.exists():
        return path
    views = load_views(DataFolder(data).cache, array_path)
    if "cine_sax" not in views:
        return None
    frames = np.asarray(views["cine_sax"], np.float32)
    labels = seg.segment(frames, (CACHE_SPACING_MM, CACHE_SPACING_MM))
    return _cached(path, lambda: overlay_gif_bytes(frames, labels, px))


def overlay_png(data: Path, key: str, array_path: str, mask_path: str | None, which: int,
                px: int = THUMB_PX) -> Path | None:
    """The mid cine SAX slice at ED (which=0) or ES (1) with its segmentation drawn over it, or None when
    the study has no masks or no cine_sax view."""
    cache = DataFolder(data).cache
    if not mask_path or not (cache / mask_path).exists():
        return None
    stamp = (cache / mask_path).stat().st_mtime_ns          # measured again (another segmenter): a new image
    path = _thumb_dir(data, key) / f"mask_{which}_{stamp}_{px}.png"
    if path.exists():
        return path
    masks, frames = load_masks(cache, mask_path)
    views = load_views(cache, array_path)
    if "cine_sax" not in views or not 0 <= which < len(masks):
        return None
    cine = views["cine_sax"]
    return _cached(path, lambda: overlay_bytes(cine[frames[which] % len(cine)], masks[which], px))

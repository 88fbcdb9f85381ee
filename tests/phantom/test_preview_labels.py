"""Label contact sheets (phantom.preview: overlay, label_sheet, crop_box, RGB PNG)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

from cmr_search.phantom.imaging.labels import LV_CAVITY, RV_CAVITY
from cmr_search.phantom.preview import LABEL_H, SEG_RGB, crop_box, label_sheet, overlay, write_png


def _disc(h=64, r=10, c=(30, 34)) -> np.ndarray:
    y, x = np.mgrid[:h, :h]
    return (y - c[0]) ** 2 + (x - c[1]) ** 2 < r * r


def test_overlay_colours_labelled_pixels_only():
    img = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    seg = np.where(_disc(), LV_CAVITY, 0).astype(np.uint8)
    rgb = overlay(img, seg)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    bg = rgb[seg == 0]
    assert (bg[:, 0] == bg[:, 1]).all() and (bg[:, 1] == bg[:, 2]).all()        # grey stays grey
    inside = rgb[seg == LV_CAVITY].astype(int)
    assert (inside[:, 0] > inside[:, 2]).mean() > 0.95                         # LV cavity reddened
    assert SEG_RGB[RV_CAVITY][2] > SEG_RGB[RV_CAVITY][0]                       # RV cavity blue


def test_label_sheet_layout_and_png(tmp_path):
    imgs = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    seg = np.stack([np.where(_disc(r=5 + 3 * i), LV_CAVITY, 0) for i in range(3)]).astype(np.uint8)
    sheet = label_sheet([("ED", imgs, seg, ["S1", "S2", "S3"]), ("ES", imgs[:2], seg[:2], ["S1", "S2"])],
                        "title", size=48)
    assert sheet.shape == (LABEL_H + 4 * (LABEL_H + 48 + 2), 3 * 50, 3)       # 2 rows x (images + labels)
    path = tmp_path / "s.png"
    write_png(path, sheet)
    data = path.read_bytes()
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (w, h, depth, colour) == (sheet.shape[1], sheet.shape[0], 8, 2)
    raw = zlib.decompress(data[41:-12])                                        # IDAT payload
    assert len(raw) == h * (1 + 3 * w)


def test_crop_box_is_square_around_the_labels():
    seg = np.zeros((2, 100, 120), np.uint8)
    seg[1, 40:60, 70:80] = 2
    rows, cols = crop_box(seg, margin=0.25)
    assert rows.stop - rows.start == cols.stop - cols.start
    assert rows.start <= 40 and rows.stop >= 60 and cols.start <= 70 and cols.stop >= 80
    assert crop_box(np.zeros((4, 4), np.uint8)) == (slice(0, 4), slice(0, 4))

"""Minimal PNG output for QA pictures (no matplotlib needed): grey-scale contact sheets of cache arrays."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write a 2-D array as an 8-bit grey PNG; floats are taken as 0..1."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(np.nan_to_num(img.astype(np.float32)), 0, 1) * 255 + 0.5).astype(np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))       # filter type 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)                # 8-bit grey
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) \
        + _chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def contact_sheet(frames: np.ndarray, cols: int = 5, gap: int = 2) -> np.ndarray:
    """(N, H, W) frames -> one (rows*H, cols*W) image, left to right, top to bottom."""
    n, h, w = frames.shape
    rows = -(-n // cols)
    sheet = np.zeros((rows * (h + gap) - gap, cols * (w + gap) - gap), np.float32)
    for k, f in enumerate(np.asarray(frames, np.float32)):
        r, c = divmod(k, cols)
        sheet[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = f
    return sheet

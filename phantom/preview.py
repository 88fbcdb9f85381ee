"""Contact sheets: one PNG per synthetic study so a person can look at what was generated.

Panels (when the study has them): cine SAX mid slice at ED and at ES, cine 2CH / 3CH / 4CH at ED,
LGE SAX mid slice, LGE long axis (4CH, else 2CH / 3CH), each windowed on its own percentiles and
labelled. Written with numpy + zlib only (no imaging library needed).

Label sheets (`label_sheet`, RGB): rows of images, each row followed by the same images with their ACDC
label map drawn over them (imaging.labels: RV cavity blue, LV myocardium green, LV cavity red, scar
yellow); phantom/sheets.py builds the docs' realistic and randomized sheets with them.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from scipy.ndimage import zoom

PANEL = 192   # px, each panel is resized to PANEL x PANEL
LABEL_H = 14  # px, label strip above each panel
# RGB of the ACDC labels on label sheets: 1 RV cavity, 2 LV myocardium, 3 LV cavity, 4 scar
SEG_RGB = np.array([[0, 0, 0], [40, 110, 255], [40, 200, 60], [235, 40, 40], [255, 225, 0]], np.float32)
SEG_ALPHA = 0.45  # opacity of the label colours over the image

# 5x7 bitmap font, column-encoded (bit 0 = top row).
_FONT = {
    "A": (0x7E, 0x11, 0x11, 0x11, 0x7E), "B": (0x7F, 0x49, 0x49, 0x49, 0x36),
    "C": (0x3E, 0x41, 0x41, 0x41, 0x22), "D": (0x7F, 0x41, 0x41, 0x22, 0x1C),
    "E": (0x7F, 0x49, 0x49, 0x49, 0x41), "F": (0x7F, 0x09, 0x09, 0x09, 0x01),
    "G": (0x3E, 0x41, 0x49, 0x49, 0x7A), "H": (0x7F, 0x08, 0x08, 0x08, 0x7F),
    "I": (0x00, 0x41, 0x7F, 0x41, 0x00), "J": (0x20, 0x40, 0x41, 0x3F, 0x01),
    "K": (0x7F, 0x08, 0x14, 0x22, 0x41), "L": (0x7F, 0x40, 0x40, 0x40, 0x40),
    "M": (0x7F, 0x02, 0x0C, 0x02, 0x7F), "N": (0x7F, 0x04, 0x08, 0x10, 0x7F),
    "O": (0x3E, 0x41, 0x41, 0x41, 0x3E), "P": (0x7F, 0x09, 0x09, 0x09, 0x06),
    "Q": (0x3E, 0x41, 0x51, 0x21, 0x5E), "R": (0x7F, 0x09, 0x19, 0x29, 0x46),
    "S": (0x46, 0x49, 0x49, 0x49, 0x31), "T": (0x01, 0x01, 0x7F, 0x01, 0x01),
    "U": (0x3F, 0x40, 0x40, 0x40, 0x3F), "V": (0x1F, 0x20, 0x40, 0x20, 0x1F),
    "W": (0x3F, 0x40, 0x38, 0x40, 0x3F), "X": (0x63, 0x14, 0x08, 0x14, 0x63),
    "Y": (0x07, 0x08, 0x70, 0x08, 0x07), "Z": (0x61, 0x51, 0x49, 0x45, 0x43),
    "0": (0x3E, 0x51, 0x49, 0x45, 0x3E), "1": (0x00, 0x42, 0x7F, 0x40, 0x00),
    "2": (0x42, 0x61, 0x51, 0x49, 0x46), "3": (0x21, 0x41, 0x45, 0x4B, 0x31),
    "4": (0x18, 0x14, 0x12, 0x7F, 0x10), "5": (0x27, 0x45, 0x45, 0x45, 0x39),
    "6": (0x3C, 0x4A, 0x49, 0x49, 0x30), "7": (0x01, 0x71, 0x09, 0x05, 0x03),
    "8": (0x36, 0x49, 0x49, 0x49, 0x36), "9": (0x06, 0x49, 0x49, 0x29, 0x1E),
    "(": (0x00, 0x1C, 0x22, 0x41, 0x00), ")": (0x00, 0x41, 0x22, 0x1C, 0x00),
    "_": (0x40, 0x40, 0x40, 0x40, 0x40), "-": (0x08, 0x08, 0x08, 0x08, 0x08),
    ".": (0x00, 0x60, 0x60, 0x00, 0x00), ":": (0x00, 0x36, 0x36, 0x00, 0x00),
    "/": (0x20, 0x10, 0x08, 0x04, 0x02), " ": (0, 0, 0, 0, 0),
}


def draw_text(img: np.ndarray, text: str, row: int, col: int, value: int = 255) -> None:
    """Draw upper-cased `text` into a uint8 image in place (unknown characters become spaces)."""
    for i, ch in enumerate(text.upper()):
        for dx, bits in enumerate(_FONT.get(ch, _FONT[" "])):
            for dy in range(7):
                r, c = row + dy, col + i * 6 + dx
                if bits >> dy & 1 and r < img.shape[0] and c < img.shape[1]:
                    img[r, c] = value


def window(image: np.ndarray) -> np.ndarray:
    """Float image -> uint8 with a 1st-99.5th percentile window."""
    lo, hi = np.percentile(image, [1.0, 99.5])
    return (np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def _panel(image: np.ndarray, label: str) -> np.ndarray:
    img = window(np.abs(image) if image.min() >= 0 else image)
    img = zoom(img.astype(np.float32), (PANEL / img.shape[0], PANEL / img.shape[1]), order=1)
    out = np.zeros((PANEL + LABEL_H, PANEL), np.uint8)
    out[LABEL_H:] = np.clip(img[:PANEL, :PANEL], 0, 255).astype(np.uint8)
    draw_text(out, label, 4, 3)
    return out


def select_panels(series) -> list[tuple[str, np.ndarray]]:
    """(label, image) pairs for the contact sheet from a study's RenderedSeries list."""
    by_kind = {s.kind: s for s in series if s.recon == "magnitude"}
    panels = []
    if "cine_sax" in by_kind:
        cine = by_kind["cine_sax"].images                 # (S, F, H, W)
        mid = cine.shape[0] // 2
        es = int(np.argmin(_cavity_proxy(cine[mid])))
        panels += [("cine SAX ED", cine[mid, 0]), (f"cine SAX ES f{es}", cine[mid, es])]
    for view in ("2ch", "3ch", "4ch"):
        if f"cine_{view}" in by_kind:
            panels.append((f"cine {view}", by_kind[f"cine_{view}"].images[0, 0]))
    if "lge_sax" in by_kind:
        lge = by_kind["lge_sax"].images
        panels.append(("LGE SAX", lge[lge.shape[0] // 2, 0]))
    for view in ("4ch", "2ch", "3ch"):
        if f"lge_{view}" in by_kind:
            panels.append((f"LGE {view}", by_kind[f"lge_{view}"].images[0, 0]))
            break
    return panels


def _cavity_proxy(frames: np.ndarray) -> np.ndarray:
    """(F, H, W) -> (F,) bright-pixel count in the image centre: smallest at end-systole."""
    f, h, w = frames.shape
    centre = frames[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4].reshape(f, -1)
    thr = np.percentile(centre, 80)
    return (centre > thr).sum(axis=1)


def contact_sheet(series, title: str = "") -> np.ndarray:
    """(H, W) uint8 contact sheet: a title strip and the panels in one row."""
    panels = [_panel(img, label) for label, img in select_panels(series)]
    sheet = np.concatenate([np.pad(p, ((0, 0), (0, 2))) for p in panels], axis=1)
    head = np.zeros((LABEL_H, sheet.shape[1]), np.uint8)
    draw_text(head, title, 4, 3)
    return np.concatenate([head, sheet])


def write_png(path: str | Path, gray: np.ndarray) -> None:
    """Write an 8-bit grayscale (H, W) or RGB (H, W, 3) PNG (numpy + zlib only)."""
    h, w = gray.shape[:2]
    colour = 2 if gray.ndim == 3 else 0
    raw = b"".join(b"\x00" + np.ascontiguousarray(gray[r]).tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(png)


def write_contact_sheet(path: str | Path, series, title: str = "") -> None:
    write_png(path, contact_sheet(series, title))


# --- label sheets ----------------------------------------------------------------------------------
def overlay(image: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """(H, W) float image + (H, W) ACDC labels -> (H, W, 3) uint8: the windowed image, label colours
    blended over it (SEG_RGB, SEG_ALPHA); background pixels stay grey."""
    g = window(image).astype(np.float32)[..., None].repeat(3, axis=-1)
    lab = np.clip(seg, 0, len(SEG_RGB) - 1)
    a = np.where(lab > 0, SEG_ALPHA, 0.0).astype(np.float32)[..., None]
    return np.clip((1 - a) * g + a * SEG_RGB[lab], 0, 255).astype(np.uint8)


def _rgb_panel(rgb: np.ndarray, label: str, size: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (LABEL_H + size, size, 3): nearest-neighbour resize (labels stay crisp)."""
    r = (np.arange(size) * rgb.shape[0] // size)[:, None]
    c = (np.arange(size) * rgb.shape[1] // size)[None, :]
    out = np.zeros((LABEL_H + size, size, 3), np.uint8)
    out[LABEL_H:] = rgb[r, c]
    strip = out[:LABEL_H, :, 0].copy()
    draw_text(strip, label, 4, 3)
    out[:LABEL_H] = strip[..., None]
    return out


def label_sheet(rows, title: str = "", size: int = 128) -> np.ndarray:
    """(H, W, 3) uint8 sheet. rows: (name, images (N, H, W), seg (N, H, W), panel labels (N,)); each
    row of images is followed by the same images with their labels drawn over them."""
    strips = []
    for name, images, seg, labels in rows:
        grey = [_rgb_panel(window(im)[..., None].repeat(3, axis=-1), f"{name} {lab}", size)
                for im, lab in zip(images, labels)]
        over = [_rgb_panel(overlay(im, sg), f"{name} labels", size) for im, sg in zip(images, seg)]
        for panels in (grey, over):
            strips.append(np.concatenate([np.pad(p, ((0, 2), (0, 2), (0, 0))) for p in panels], axis=1))
    width = max(s.shape[1] for s in strips)
    sheet = np.concatenate([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0))) for s in strips])
    head = np.zeros((LABEL_H, width), np.uint8)
    draw_text(head, title, 4, 3)
    return np.concatenate([head[..., None].repeat(3, axis=-1), sheet])


def crop_box(seg: np.ndarray, margin: float = 0.35, min_px: int = 32) -> tuple[slice, slice]:
    """A square (rows, cols) box around every labelled pixel of seg (..., H, W), widened by `margin`
    of its side on each side; the whole image when nothing is labelled."""
    h, w = seg.shape[-2:]
    any_lab = (seg > 0).reshape(-1, h, w).any(0)
    if not any_lab.any():
        return slice(0, h), slice(0, w)
    rr, cc = np.flatnonzero(any_lab.any(1)), np.flatnonzero(any_lab.any(0))
    side = max(rr[-1] - rr[0], cc[-1] - cc[0], min_px) * (1 + 2 * margin)
    side = int(min(side, h, w))
    r0 = int(np.clip((rr[0] + rr[-1]) / 2 - side / 2, 0, h - side))
    c0 = int(np.clip((cc[0] + cc[-1]) / 2 - side / 2, 0, w - side))
    return slice(r0, r0 + side), slice(c0, c0 + side)

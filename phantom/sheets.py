"""The docs' label contact sheets: images beside their exact ACDC label maps, both rendering modes.

    python -m cmr_search.phantom.sheets docs/phantom      # or `make sheets`

writes `labels_realistic.png` (the demo archive's realistic rendering: bSSFP cine SAX base -> apex at
end-diastole and end-systole, LGE SAX, each row followed by its label overlay; from the label maps the
generator writes beside the DICOM, dicom/labelmaps.py) and `labels_randomized.png` (the training mode,
randomized/: random contrast, shape, pose and cut, with the labels the segmenter learns from). ED and
ES are the frames of largest and smallest LV cavity in the labels. Same arguments, same PNG bytes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cmr_search.phantom.dicom.labelmaps import acdc_seg
from cmr_search.phantom.generate import simulate_study
from cmr_search.phantom.imaging.labels import LV_CAVITY
from cmr_search.phantom.preview import crop_box, label_sheet, write_png
from cmr_search.phantom.profiles import get_profile
from cmr_search.phantom.randomized import sample_slices

REALISTIC = {"seed": 21, "index": 0, "profile": "demo", "label": "ICM"}   # an infarct: scar on LGE
RANDOMIZED = {"seed": 0, "hearts": 4, "per_heart": 8}


def _series(series, kind: str):
    return next(s for s in series if s.kind == kind and s.recon == "magnitude")


def realistic_sheet(seed: int, index: int, profile: str, label: str) -> np.ndarray:
    """(H, W, 3) uint8: cine SAX at ED and ES and LGE SAX, base -> apex, with their label overlays."""
    sim = simulate_study(seed, index, get_profile(profile), label)
    cine, lge = _series(sim["series"], "cine_sax"), _series(sim["series"], "lge_sax")
    seg = acdc_seg(cine.tissue, cine.lge_pct)                         # (S, F, H, W)
    seg_lge = acdc_seg(lge.tissue, lge.lge_pct)[:, 0]                 # (S', H, W)
    cavity = (seg == LV_CAVITY).sum(axis=(0, 2, 3))                   # (F,)
    ed, es = int(np.argmax(cavity)), int(np.argmin(cavity))
    rows, cols = crop_box(np.concatenate([seg.reshape(-1, *seg.shape[2:]), seg_lge]))
    names = [f"S{i + 1}" for i in range(seg.shape[0])]
    crop = (Ellipsis, rows, cols)
    table = [("ED", cine.images[:, ed][crop], seg[:, ed][crop], names),
             ("ES", cine.images[:, es][crop], seg[:, es][crop], names),
             ("LGE", lge.images[:, 0][crop], seg_lge[crop], [f"S{i + 1}" for i in range(len(seg_lge))])]
    title = (f"realistic {label} seed {seed} ({profile}): cine SAX base to apex at ED f{ed} and ES f{es}, "
             f"LGE SAX; labels RV blue, myo green, LV red, scar yellow")
    return label_sheet(table, title)


def randomized_sheet(seed: int, hearts: int, per_heart: int) -> np.ndarray:
    """(H, W, 3) uint8: `per_heart` random cuts of each of `hearts` randomized hearts, with labels."""
    table = []
    for i in range(hearts):
        images, labels = sample_slices(seed, i, per_heart)
        table.append((f"H{i}", images, labels, [f"{k + 1}" for k in range(per_heart)]))
    title = (f"randomized training slices seed {seed}: random contrast, shape, pose and cut; labels RV blue, "
             f"myo green, LV red")
    return label_sheet(table, title)


def write_sheets(out: str | Path) -> list[Path]:
    """Write both sheets into folder `out`; returns their paths."""
    out = Path(out)
    paths = [out / "labels_realistic.png", out / "labels_randomized.png"]
    write_png(paths[0], realistic_sheet(**REALISTIC))
    write_png(paths[1], randomized_sheet(**RANDOMIZED))
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cmr_search.phantom.sheets",
                                description="Write the docs' label contact sheets (realistic, randomized).")
    p.add_argument("out", type=Path, nargs="?", default=Path("docs/phantom"), help="folder (docs/phantom)")
    args = p.parse_args(argv)
    for path in write_sheets(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

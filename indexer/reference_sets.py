"""Readers of the two real reference sets the segmenter is checked on (bench/real_measure.py, tests).

ACDC development layout (../shared/data/acdc-dev, see nifti.py for the full ACDC layout):

    patientNNN/Info.cfg                       ED: 1, ES: 2, Group: DCM, Height: .., Weight: ..
    patientNNN/patientNNN_frame01.nii.gz      ED volume (x, y, z); _frame01_gt.nii.gz its expert mask
    patientNNN/patientNNN_frame02.nii.gz      ES volume; _frame02_gt.nii.gz

read as images/masks (S, 2, H, W): slices in file order (ACDC stores base first), phase 0 = ED, 1 = ES,
rows along y, columns along x (as nifti.py reads them for `cmr prepare`).

Sunnybrook cine (../shared/data/sunnybrook-cine): one DICOM cine SAX series per study folder, assembled
like any archive study (scan.py headers, stacks.group_slices: slices base -> apex by position along the
normal, phases by TriggerTime). Expert contours `contours/<original id>/{i,o}-contours/
IM-0001-NNNN-{i,o}contour-manual.txt` (ids.csv maps folders to original ids) hold "x y" pixel coordinates
(x along columns, y along rows) of the image whose InstanceNumber is NNNN (the image number in the
original series; the files here are named by InstanceNumber too). The coordinates are 1-based: pixel
(row r, col c) has its centre at x = c + 1, y = r + 1 (CONTOUR_ORIGIN). Measured, not assumed: the image
gradient sampled along all 142 contours (96 i, 46 o) of the five studies peaks at an offset of (1.0, 1.0) px (i-contours
sharply, in 0.25 px steps), and the contours fit the image of their own InstanceNumber better than the
slice above or below (tests/indexer/test_reference_sets.py checks both). Masks: LV cavity = pixels whose
centre lies inside the i-contour; myocardium = inside the o-contour minus the cavity, on images with both.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from cmr_search.indexer.dicom_io import read_frames
from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.nifti import read_info
from cmr_search.indexer.scan import scan_archive
from cmr_search.indexer.stacks import group_slices

CONTOUR_NAME = re.compile(r"IM-\d+-(\d+)-([io])contour-manual\.txt$")
ACDC_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")
CONTOUR_ORIGIN = (1.0, 1.0)     # Sunnybrook contour (x, y) of the centre of pixel (row 0, col 0)


@dataclass
class ReferenceCase:
    """One real study with expert labels, as the segmenter sees it."""
    name: str                              # patient001 / SCD0000101
    images: np.ndarray                     # (S, T, H, W) float32, slices base -> apex
    spacing: tuple[float, float]           # in-plane (row, col) mm
    slice_mm: float                        # centre-to-centre slice distance, mm
    masks: np.ndarray | None = None        # (S, T, H, W) uint8 expert labels (ACDC), LABELS convention
    group: str | None = None               # ACDC diagnosis group
    ed_es: tuple[int, int] | None = None   # ACDC: (0, 1)
    height_cm: float | None = None
    weight_kg: float | None = None
    contours: list[dict] = field(default_factory=list)   # Sunnybrook: per contoured image (see read_sunnybrook)


# --- ACDC -------------------------------------------------------------------------------------------
def _volume(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj).transpose(2, 1, 0), tuple(float(z) for z in img.header.get_zooms()[:3])


def read_acdc_patient(folder) -> ReferenceCase:
    """One ACDC patient folder with ED/ES frames and their _gt masks -> ReferenceCase (T = 2: ED, ES)."""
    folder = Path(folder)
    info = read_info(folder / "Info.cfg")
    images, masks, zooms = [], [], None
    for key in ("ED", "ES"):
        stem = folder / f"{folder.name}_frame{int(info[key]):02d}"
        img_path, gt_path = stem.with_name(stem.name + ".nii.gz"), stem.with_name(stem.name + "_gt.nii.gz")
        if not img_path.exists() or not gt_path.exists():
            raise IndexerError(f"{folder}: {img_path.name} or {gt_path.name} is missing (ACDC {key} frame)")
        img, zooms = _volume(img_path)
        gt, _ = _volume(gt_path)
        images.append(img.astype(np.float32))
        masks.append(gt.astype(np.uint8))
    return ReferenceCase(folder.name, np.stack(images, 1), (zooms[1], zooms[0]), zooms[2], np.stack(masks, 1),
                         str(info.get("Group")), (0, 1), info.get("Height"), info.get("Weight"))


def acdc_patients(root) -> list[Path]:
    """Patient folders of an ACDC-layout root, sorted."""
    return sorted(p.parent for p in Path(root).glob("patient*/Info.cfg"))


# --- Sunnybrook -------------------------------------------------------------------------------------
def read_contour(path) -> np.ndarray:
    """A contour file -> (K, 2) float array of (x, y) pixel coordinates."""
    pts = np.loadtxt(str(path), dtype=np.float64, ndmin=2)
    if pts.shape[1] != 2 or len(pts) < 3:
        raise IndexerError(f"{path}: expected at least 3 lines of 'x y'; got an array of shape {pts.shape}")
    return pts


def fill_polygon(points: np.ndarray, shape: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(K, 2) (x, y) polygon -> (H, W) bool mask of the pixels whose centre, at (x = col + offset[0],
    y = row + offset[1]), lies inside (even-odd rule)."""
    h, w = shape
    x, y = points[:, 0] - offset[0], points[:, 1] - offset[1]
    r0, r1 = max(0, int(np.floor(y.min()))), min(h, int(np.ceil(y.max())) + 1)
    c0, c1 = max(0, int(np.floor(x.min()))), min(w, int(np.ceil(x.max())) + 1)
    out = np.zeros(shape, bool)
    if r1 <= r0 or c1 <= c0:
        return out
    py, px = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    py, px = py.ravel()[:, None], px.ravel()[:, None]
    x1, y1, x2, y2 = x[None], y[None], np.roll(x, -1)[None], np.roll(y, -1)[None]
    crosses = (y1 > py) != (y2 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
    inside = (crosses & (px < xint)).sum(1) % 2 == 1
    out[r0:r1, c0:c1] = inside.reshape(r1 - r0, c1 - c0)
    return out


def _original_ids(root: Path) -> dict[str, str]:
    with open(root / "ids.csv", newline="") as f:
        return {row["patient_id"]: row["original_id"] for row in csv.DictReader(f)}


def contour_files(folder: Path) -> dict[int, dict[str, Path]]:
    """contours/<id>/ -> {image number: {"i": path, "o": path}}."""
    out: dict[int, dict[str, Path]] = {}
    for p in sorted(folder.glob("*-contours/*.txt")):
        m = CONTOUR_NAME.search(p.name)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = p
    return out


def sunnybrook_cine(folder) -> tuple[np.ndarray, tuple[float, float], float, dict[int, tuple[int, int]]]:
    """One study folder -> (images (S, T, H, W), (row, col) mm, slice mm, InstanceNumber -> (s, t))."""
    studies, errors = scan_archive(folder)
    if len(studies) != 1 or len(studies[0].series) != 1:
        raise IndexerError(f"{folder}: expected one cine SAX series; found {len(studies)} studies "
                           f"({[e.reason for e in errors[:3]]})")
    series = studies[0].series[0]
    slices, _ = group_slices({series.series_instance_uid: series.instances})
    n_t = min(len(s.instances) for s in slices)
    insts = [i for s in slices for i in s.instances[:n_t]]
    images = read_frames(insts).reshape(len(slices), n_t, insts[0].rows, insts[0].cols)
    where = {i.instance_number: (k, t) for k, s in enumerate(slices) for t, i in enumerate(s.instances[:n_t])}
    normal = slices[0].plane.normal
    pos = [float(s.plane.ipp @ normal) for s in slices]
    slice_mm = float(np.median(np.abs(np.diff(pos)))) if len(pos) > 1 else float(insts[0].slice_thickness or 10.0)
    return images, slices[0].plane.spacing, slice_mm, where


def read_sunnybrook(folder, root=None) -> ReferenceCase:
    """One Sunnybrook study folder -> ReferenceCase with `contours`: per contoured image a dict of
    slice, phase, instance (number), cavity (H, W bool), myocardium (H, W bool or None without o-contour),
    files ({"i": path, "o": path})."""
    folder = Path(folder)
    root = Path(root) if root else folder.parent
    images, spacing, slice_mm, where = sunnybrook_cine(folder)
    original = _original_ids(root)[folder.name]
    shape = images.shape[2:]
    contours = []
    for number, files in sorted(contour_files(root / "contours" / original).items()):
        if "i" not in files:
            continue
        if number not in where:
            raise IndexerError(f"{files['i']}: image number {number} is not an InstanceNumber of {folder}")
        cav = fill_polygon(read_contour(files["i"]), shape, CONTOUR_ORIGIN)
        myo = fill_polygon(read_contour(files["o"]), shape, CONTOUR_ORIGIN) & ~cav if "o" in files else None
        s, t = where[number]
        contours.append({"slice": s, "phase": t, "instance": number, "cavity": cav, "myocardium": myo,
                         "files": files})
    return ReferenceCase(folder.name, images, spacing, slice_mm, contours=contours)


def sunnybrook_studies(root) -> list[Path]:
    """Study folders of the Sunnybrook root (the ones ids.csv names), sorted."""
    root = Path(root)
    return sorted(root / pid for pid in _original_ids(root) if (root / pid).is_dir())

"""`cmr segment`'s work: a study folder, a DICOM series folder or a NIfTI volume -> cine SAX masks and
measurements.

    inp = load_input("study_folder/")             # CineInput: the (S, T, H, W) stack and its geometry
    result = segment_input(inp, Segmenter.load(), out="out/", fmt="auto")   # writes masks + measurements.json

DICOM: the folder is scanned like an archive (scan.py), its series typed (series_typing.py) and the cine SAX
series' instances grouped into slices base -> apex with phases in time order (stacks.group_slices), as
`cmr prepare` does. Slices whose matrix or phase count differs from the commonest are dropped (and say so).
NIfTI: (x, y, z) one phase or (x, y, z, t) cine, read as (z, t, y, x) like nifti.py (slices in file order,
taken as base -> apex, as ACDC stores them); height and weight come from an ACDC Info.cfg beside the file.
The segmenter runs on every image of the stack, batch-wise; model.segmentation.measure measures the masks.
Every refusal is a SegmentInputError naming the file or folder and the reason.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from cmr_search.indexer.dicom_io import read_frames
from cmr_search.indexer.errors import IndexerError, SegmentInputError
from cmr_search.indexer.nifti import read_info
from cmr_search.indexer.records import InstanceRecord, StudyRecord
from cmr_search.indexer.scan import scan_archive
from cmr_search.indexer.segment_output import write_masks
from cmr_search.indexer.series_typing import type_study
from cmr_search.indexer.stacks import Slice, group_slices
from cmr_search.model.atomic import atomic_write
from cmr_search.model.segmentation import LABELS
from cmr_search.model.segmentation.measure import LV, RV, measure_cine, volume_curve

NIFTI_SUFFIXES = (".nii", ".nii.gz")
MIN_MATRIX = 16              # images smaller than this (rows or columns) are not cine images
MAX_PHASES = 200             # a 4-D file with more "phases" than this is not a cine
GAP_FACTOR = 1.5             # a slice step this many times the median step: slices are missing there


@dataclass
class CineInput:
    """A cine SAX stack ready to segment, with what is needed to write masks back in its geometry."""
    source: Path                              # the file or folder given
    kind: str                                 # "nifti" | "dicom"
    stack: np.ndarray                         # (S, T, H, W) float32
    spacing: tuple[float, float]              # in-plane (row, col) mm
    slice_mm: float                           # centre-to-centre slice distance, mm
    height_cm: float | None = None
    weight_kg: float | None = None
    notes: list[str] = field(default_factory=list)          # assembly findings that make numbers less sure
    nifti: object | None = None               # the input image (NIfTI): its affine and header are reused
    instances: list[list[InstanceRecord]] | None = None     # DICOM: [slice][phase] source images
    affine: np.ndarray | None = None          # DICOM: voxel (col, row, slice) -> RAS mm, for NIfTI output
    describe: dict = field(default_factory=dict)            # what was read, for measurements.json
    output_notes: list[str] = field(default_factory=list)   # how the masks were written (not the numbers)


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def _check_stack(stack: np.ndarray, where: Path) -> None:
    s, t, h, w = stack.shape
    if min(h, w) < MIN_MATRIX:
        raise SegmentInputError(f"{where}: images of {h}x{w} pixels are too small to be cine images")
    if s * t == 1:
        raise SegmentInputError(f"{where}: a single image; `cmr segment` needs a short-axis stack "
                                "(several slices, one or more phases)")
    if s < 2:
        raise SegmentInputError(f"{where}: one slice position ({t} phases): not a short-axis stack; pass "
                                "the whole cine SAX series or study")


# --- NIfTI -------------------------------------------------------------------------------------------
def _nifti_array(img, path: Path) -> np.ndarray:
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) == 2 or (len(shape) == 3 and shape[2] == 1):
        raise SegmentInputError(f"{path}: a single image of shape {img.shape}; `cmr segment` needs a "
                                "short-axis stack (x, y, z) or cine (x, y, z, t)")
    if len(shape) not in (3, 4):
        raise SegmentInputError(f"{path}: a {len(img.shape)}-D volume of shape {img.shape}; expected "
                                "(x, y, z) for one phase or (x, y, z, t) for a cine")
    if len(shape) == 4 and shape[3] > MAX_PHASES:
        raise SegmentInputError(f"{path}: 4-D shape {img.shape} has {shape[3]} volumes along t; a cine "
                                f"has at most {MAX_PHASES} phases (is the 4th axis time?)")
    try:
        data = np.asarray(img.dataobj, np.float32).reshape(shape)
    except (OSError, ValueError, EOFError) as e:
        raise SegmentInputError(f"{path}: cannot read the voxel data ({e})") from e
    return data if data.ndim == 4 else data[..., None]


def load_nifti(path: Path) -> CineInput:
    """A NIfTI file -> CineInput (see the module docstring)."""
    try:
        img = nib.load(str(path))
    except Exception as e:                   # nibabel raises many types for a damaged file
        raise SegmentInputError(f"{path}: not a readable NIfTI file ({type(e).__name__}: {e})") from e
    data = _nifti_array(img, path)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    stack = data.transpose(2, 3, 1, 0)       # (x, y, z, t) -> (z, t, y, x)
    _check_stack(stack, path)
    info_path = path.parent / "Info.cfg"
    info = read_info(info_path) if info_path.exists() else {}
    notes = [] if zooms[2] > 0 else ["slice spacing missing in the header"]
    return CineInput(path, "nifti", stack, (zooms[1], zooms[0]), zooms[2] or 10.0,
                     info.get("Height"), info.get("Weight"), notes, nifti=img,
                     describe={"shape_xyzt": list(data.shape), "slice_order": "file order, taken as base -> apex"})


# --- DICOM -------------------------------------------------------------------------------------------
def _one_study(folder: Path) -> StudyRecord:
    studies, errors = scan_archive(folder)
    if not studies:
        why = f" ({errors[0].path}: {errors[0].reason})" if errors else ""
        nifti = sorted(p.name for p in folder.iterdir() if is_nifti(p)) if folder.is_dir() else []
        hint = f"; it holds NIfTI files ({', '.join(nifti[:3])}): pass one of them" if nifti else ""
        raise SegmentInputError(f"{folder}: no readable DICOM images found{why}{hint}")
    if len(studies) > 1:
        raise SegmentInputError(f"{folder}: holds {len(studies)} studies; pass one study or series folder")
    return studies[0]


def _cine_sax_slices(study: StudyRecord, folder: Path) -> tuple[list[Slice], dict]:
    types = type_study(study)
    chosen = {s.series_instance_uid: s.instances for s in study.series
              if types[s.series_instance_uid].view == "cine_sax" and s.instances}
    if not chosen:
        found = ", ".join(f"series {s.series_number} '{s.description}' -> {types[s.series_instance_uid].view}"
                          for s in study.series[:6])
        raise SegmentInputError(f"{folder}: no cine short-axis series found ({found}); pass a study or "
                                "series folder with a cine SAX stack")
    slices, _ = group_slices(chosen)
    series = [s for s in study.series if s.series_instance_uid in chosen]
    return slices, {"series": [{"number": s.series_number, "description": s.description,
                                "typing": types[s.series_instance_uid].reason} for s in series]}


def _regular_slices(slices: list[Slice], notes: list[str]) -> list[Slice]:
    """Keep the slices of the commonest matrix and phase count; note what was dropped."""
    common = Counter((s.plane.shape, len(s.instances)) for s in slices).most_common(1)[0][0]
    keep = [s for s in slices if (s.plane.shape, len(s.instances)) == common]
    if len(keep) < len(slices):
        notes.append(f"slices dropped: {len(slices) - len(keep)} slices with another matrix or phase count")
    return keep


def _slice_geometry(slices: list[Slice], notes: list[str]) -> tuple[float, np.ndarray | None]:
    """-> (centre-to-centre slice mm, voxel (col, row, slice) -> RAS affine or None without geometry)."""
    first = slices[0].plane
    if not all(s.plane.real for s in slices):
        thick = slices[0].instances[0].slice_thickness or 10.0
        notes.append(f"slice positions missing: slice spacing taken as {thick:g} mm")
        return float(thick), None
    pos = np.array([s.plane.ipp @ first.normal for s in slices])
    steps = np.abs(np.diff(pos))
    step = float(np.median(steps))
    for k in np.flatnonzero(steps > GAP_FACTOR * step):
        notes.append(f"slices dropped: {steps[k]:.0f} mm gap after slice {k} (spacing {step:.1f} mm)")
    lps = np.eye(4)
    lps[:3, 0] = first.row_dir * first.spacing[1]
    lps[:3, 1] = first.col_dir * first.spacing[0]
    lps[:3, 2] = (slices[-1].plane.ipp - first.ipp) / max(1, len(slices) - 1)
    lps[:3, 3] = first.ipp
    return step, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps       # DICOM LPS -> NIfTI RAS


def load_dicom(folder: Path) -> CineInput:
    """A study or series folder -> CineInput of its cine SAX stack (see the module docstring)."""
    study = _one_study(folder)
    slices, describe = _cine_sax_slices(study, folder)
    notes: list[str] = []
    slices = _regular_slices(slices, notes)
    s, t = len(slices), len(slices[0].instances)
    instances = [sl.instances for sl in slices]
    if s * t == 1:
        raise SegmentInputError(f"{folder}: a single image ({instances[0][0].path}); pass a cine SAX stack")
    try:
        frames = read_frames([i for row in instances for i in row])
    except IndexerError as e:
        raise SegmentInputError(f"{folder}: pixel data cannot be read: {e}") from e
    stack = frames.reshape(s, t, *frames.shape[1:])
    _check_stack(stack, folder)
    slice_mm, affine = _slice_geometry(slices, notes)
    height = study.height_m * 100.0 if study.height_m else None
    describe.update(slices=s, phases=t, slice_order="base -> apex (along the slice normal)")
    return CineInput(folder, "dicom", stack, slices[0].plane.spacing, slice_mm, height, study.weight_kg,
                     notes, instances=instances, affine=affine, describe=describe)


def load_input(path) -> CineInput:
    """A NIfTI file, a DICOM study/series folder (or an ACDC patient folder with a _4d.nii.gz) -> CineInput."""
    path = Path(path)
    if not path.exists():
        raise SegmentInputError(f"{path}: no such file or folder")
    if path.is_file() and is_nifti(path):
        return load_nifti(path)
    if path.is_file():
        try:
            pydicom.dcmread(str(path), stop_before_pixels=True)
        except Exception as e:
            raise SegmentInputError(f"{path}: neither NIfTI (.nii, .nii.gz) nor DICOM ({type(e).__name__})") from e
        raise SegmentInputError(f"{path}: one DICOM file is a single image; pass the folder of the cine SAX "
                                "series or of the study")
    four_d = path / f"{path.name}_4d.nii.gz"
    if four_d.exists():
        return load_nifti(four_d)
    return load_dicom(path)


# --- run ---------------------------------------------------------------------------------------------
def measure_input(inp: CineInput, masks: np.ndarray) -> dict:
    """measure_cine of the masks, with the assembly notes added to the flags."""
    m = measure_cine(masks, inp.spacing, inp.slice_mm, height_cm=inp.height_cm, weight_kg=inp.weight_kg)
    if inp.notes:
        m["seg_flags"] = [*m["seg_flags"], *inp.notes]
        m["seg_quality"] = "poor" if m["seg_quality"] == "poor" else "check"
    return m


def _json_safe(v):
    return float(round(v, 3)) if isinstance(v, float) else v


def segment_input(inp: CineInput, segmenter, out, fmt: str = "auto", batch: int = 16) -> dict:
    """Segment the whole stack, write the masks (NIfTI or DICOM SEG) and measurements.json into `out`;
    return what measurements.json holds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    masks = segmenter.segment_cine(inp.stack, inp.spacing, batch=batch)
    measured = measure_input(inp, masks)
    written = write_masks(inp, masks, out, fmt, segmenter)
    result = {
        "input": {"path": str(inp.source), "kind": inp.kind, "shape_stcw": list(inp.stack.shape),
                  "pixel_spacing_mm": list(inp.spacing), "slice_spacing_mm": inp.slice_mm,
                  "height_cm": inp.height_cm, "weight_kg": inp.weight_kg, **inp.describe},
        "segmenter": {"fingerprint": segmenter.fingerprint, "checkpoint": segmenter.card.get("path"),
                      "model": segmenter.cfg.name, "trained": segmenter.card.get("trained", True)},
        "labels": {str(k): v for k, v in LABELS.items()},
        "measurements": {k: (_json_safe(v) if not isinstance(v, list) else v)
                         for k, v in measured.items()},
        "lv_cavity_ml_per_phase": [round(float(v), 2) for v in volume_curve(masks, LV, inp.spacing, inp.slice_mm)],
        "rv_cavity_ml_per_phase": [round(float(v), 2) for v in volume_curve(masks, RV, inp.spacing, inp.slice_mm)],
        "outputs": [str(p.relative_to(out)) for p in written],
        "output_notes": inp.output_notes,
    }
    atomic_write(out / "measurements.json", json.dumps(result, indent=2))
    return result

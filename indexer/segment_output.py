"""Where `cmr segment` writes masks: NIfTI in the input's geometry, or a DICOM SEG over the source images.

- NIfTI input -> masks.nii.gz with the input's affine and header (uint8 labels, (x, y, z) or (x, y, z, t)
  as the input), so a viewer lays it over the input as it is.
- DICOM input, nifti -> masks.nii.gz (x = columns, y = rows, z = slices base -> apex, t = phases), affine
  from ImagePositionPatient/ImageOrientationPatient/PixelSpacing turned from DICOM LPS to NIfTI RAS.
- DICOM input, seg -> seg/phase_NN.dcm: DICOM Segmentations (highdicom, BINARY), one instance per phase
  (a SEG's frames are planes, each position once) over that phase's source images, in one new series;
  segment numbers = the label values (1 RV cavity, 2 LV myocardium, 3 LV cavity); empty frames omitted.
"""
from __future__ import annotations

from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.valuerep import DA, TM

from cmr_search.indexer.errors import SegmentInputError
from cmr_search.model.atomic import atomic_write

FORMATS = ("auto", "nifti", "seg")
TYPE2_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                  "ReferringPhysicianName", "StudyID", "AccessionNumber")
DATE_TIME_KEYWORDS = ("PatientBirthDate", "StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate",
                      "StudyTime", "SeriesTime", "ContentTime", "AcquisitionTime", "PatientBirthTime")
SEGMENTS = ((1, "RV cavity", codes.SCT.RightVentricle), (2, "LV myocardium", codes.SCT.LeftVentricleMyocardium),
            (3, "LV cavity", codes.SCT.LeftVentricle))


def _nib_save(img, path: Path) -> Path:
    """nib.save to a temporary name beside `path`, then rename (the suffix tells nibabel to gzip)."""
    tmp = path.with_name(f".{path.name[:-len('.nii.gz')]}.tmp.nii.gz")
    nib.save(img, str(tmp))
    tmp.replace(path)
    return path


def nifti_like_input(inp, masks: np.ndarray, out: Path) -> Path:
    """Masks (S, T, H, W) -> masks.nii.gz with the NIfTI input's affine, header and dimensionality."""
    src = inp.nifti
    data = masks.transpose(3, 2, 0, 1)                 # (S, T, H, W) -> (x, y, z, t)
    if len(src.shape) == 3 or (len(src.shape) == 4 and src.shape[3] == 1 and data.shape[3] == 1):
        data = data.reshape(src.shape)
    header = src.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    img = type(src)(np.ascontiguousarray(data, np.uint8), src.affine, header)
    return _nib_save(img, out / "masks.nii.gz")


def nifti_from_dicom(inp, masks: np.ndarray, out: Path) -> Path:
    """Masks of a DICOM stack -> masks.nii.gz, affine from the DICOM geometry (identity scaled by the
    spacing when positions are missing)."""
    affine = inp.affine
    if affine is None:
        affine = np.diag([inp.spacing[1], inp.spacing[0], inp.slice_mm, 1.0])
    img = nib.Nifti1Image(np.ascontiguousarray(masks.transpose(3, 2, 0, 1), np.uint8), affine)
    img.header.set_xyzt_units("mm", "msec")
    return _nib_save(img, out / "masks.nii.gz")


def _descriptions(segmenter) -> list:
    algo = hd.AlgorithmIdentificationSequence(name=f"cmr-search {segmenter.cfg.name}",
                                              family=codes.cid7162.ArtificialIntelligence,
                                              version=segmenter.fingerprint)
    return [hd.seg.SegmentDescription(segment_number=n, segment_label=label,
                                      segmented_property_category=codes.SCT.AnatomicalStructure,
                                      segmented_property_type=code, algorithm_type="AUTOMATIC",
                                      algorithm_identification=algo)
            for n, label, code in SEGMENTS]


def _readable_source(path: str) -> pydicom.Dataset:
    """A source image's header, with dates and times that do not parse (real archives have `20120000`)
    blanked and absent type-2 patient/study attributes present but empty: highdicom copies the patient and
    study modules and refuses invalid or missing values."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for kw in TYPE2_KEYWORDS:
        if kw not in ds:
            setattr(ds, kw, "")
    for kw in DATE_TIME_KEYWORDS:
        if kw in ds:
            try:
                (DA if kw.endswith("Date") else TM)(ds.data_element(kw).value)
            except ValueError:
                setattr(ds, kw, "")
    return ds


def _one_frame_of_reference(sources: list[pydicom.Dataset], notes: list[str]) -> None:
    """A SEG has one frame of reference; some de-identified series carry one FrameOfReferenceUID per image
    (their positions still agree): the copies read here take the first one, and a note says so."""
    uids = {getattr(ds, "FrameOfReferenceUID", None) for ds in sources}
    if uids == {None}:
        notes.append("DICOM SEG: the source images have no FrameOfReferenceUID; a new one is used")
    elif len(uids) > 1:
        notes.append(f"DICOM SEG: the source images carry {len(uids)} FrameOfReferenceUIDs; the first is used")
    else:
        return
    uid = getattr(sources[0], "FrameOfReferenceUID", None) or hd.UID()
    for ds in sources:
        ds.FrameOfReferenceUID = uid


def _segmentation(where, **kw):
    """highdicom's Segmentation; its refusals (odd source headers) become a SegmentInputError naming the input."""
    try:
        return hd.seg.Segmentation(**kw)
    except (ValueError, TypeError, AttributeError) as e:
        raise SegmentInputError(f"{where}: a DICOM SEG cannot be built over these images ({e}); "
                                "use --format nifti") from e


def dicom_seg(inp, masks: np.ndarray, out: Path, segmenter) -> list[Path]:
    """Masks of a DICOM stack -> seg/phase_NN.dcm, one SEG instance per phase (a SEG's frames are planes,
    each position once) over that phase's source images, all in one new series."""
    flat = [i for row in inp.instances for i in row]
    if any(i.frame for i in flat) or len({i.path for i in flat}) != len(flat):
        raise SegmentInputError(f"{inp.source}: multi-frame source images; use --format nifti")
    sources = [[_readable_source(i.path) for i in row] for row in inp.instances]      # [slice][phase]
    _one_frame_of_reference([ds for row in sources for ds in row], inp.output_notes)
    folder = out / "seg"
    folder.mkdir(exist_ok=True)
    series, descriptions, written = hd.UID(), _descriptions(segmenter), []
    for t in range(masks.shape[1]):
        seg = _segmentation(
            source_images=[row[t] for row in sources], pixel_array=np.ascontiguousarray(masks[:, t], np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
            series_instance_uid=series, series_number=9900, sop_instance_uid=hd.UID(), instance_number=t + 1,
            manufacturer="cmr-search", manufacturer_model_name=segmenter.cfg.name,
            software_versions=segmenter.fingerprint, device_serial_number="0",
            content_description=f"cine SAX segmentation, phase {t + 1}", omit_empty_frames=True, where=inp.source)
        written.append(atomic_write(folder / f"phase_{t + 1:02d}.dcm", lambda p, seg=seg: seg.save_as(str(p))))
    return written


def write_masks(inp, masks: np.ndarray, out: Path, fmt: str, segmenter) -> list[Path]:
    """Write the masks in `fmt` (auto: NIfTI for NIfTI input, SEG for DICOM input) -> paths written."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")
    if inp.kind == "nifti":
        if fmt == "seg":
            raise SegmentInputError(f"{inp.source}: DICOM SEG needs DICOM source images; use --format nifti")
        return [nifti_like_input(inp, masks, out)]
    if fmt == "nifti":
        return [nifti_from_dicom(inp, masks, out)]
    return dicom_seg(inp, masks, out, segmenter)

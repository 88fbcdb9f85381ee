"""Tiny DICOM studies written with pydicom for the assembly / cache tests (explicit geometry).

A cine SAX stack of `n_slices` x `n_phases` (one series per slice or one series for all), with a beating
bright disk (the "heart") centred at `heart_mm` in patient space; slices whose plane misses the heart by
more than `heart_halflen` mm show a static disk only. Optional LGE SAX stack and a cine 4CH plane.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

SIZE, SPACING = 64, 3.0
ROW_SAX, COL_SAX = np.array([1.0, 0, 0]), np.array([0, 0.8, -0.6])   # SAX normal = (0, 0.6, 0.8) -> flipped


def _image(plane_ipp, row_dir, col_dir, heart, phase, n_phases, beating) -> np.ndarray:
    r, c = np.mgrid[:SIZE, :SIZE]
    pts = plane_ipp + c[..., None] * SPACING * row_dir + r[..., None] * SPACING * col_dir
    d = np.linalg.norm(pts - heart, axis=-1)
    radius = 20 + (8 * np.cos(2 * np.pi * phase / n_phases) if beating else 0)
    img = 200 + 600 * (d < radius) + 100 * np.sin(r / 5.0)
    return img.astype(np.uint16)


def _write(path: Path, study: dict, series_uid: str, desc: str, number: int, inst: int, ipp, row_dir,
           col_dir, img, trigger, n_phases, lge=False) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study["uid"], series_uid
    ds.PatientID, ds.PatientName, ds.AccessionNumber = study["pid"], study["name"], study["acc"]
    ds.StudyDate, ds.PatientSex, ds.PatientAge, ds.Modality = "20230415", "F", "054Y", "MR"
    ds.Manufacturer, ds.ManufacturerModelName, ds.MagneticFieldStrength = "SIEMENS", "Avanto", 1.5
    ds.SeriesDescription, ds.ProtocolName, ds.SeriesNumber, ds.InstanceNumber = desc, desc, number, inst
    ds.ScanningSequence = "GR\\IR" if lge else "GR"
    ds.SequenceVariant, ds.ImageType = "SP" if lge else "SS", "ORIGINAL\\PRIMARY\\M"
    ds.ImagePositionPatient = [float(x) for x in ipp]
    ds.ImageOrientationPatient = [float(x) for x in (*row_dir, *col_dir)]
    ds.PixelSpacing, ds.SliceThickness = [SPACING, SPACING], 8.0
    ds.TriggerTime, ds.CardiacNumberOfImages = float(trigger), n_phases
    if lge:
        ds.InversionTime = 300.0
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = SIZE, SIZE, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = img.tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_study(root: Path, name: str = "s1", n_slices: int = 8, n_phases: int = 10, heart_slices=(2, 5),
                per_slice_series: bool = True, lge: bool = False, cine_4ch: bool = False,
                heart_mm=(100.0, 90.0, 0.0)) -> dict:
    """Write one study under root/name; returns its identifiers and the truth."""
    study = {"uid": generate_uid(), "pid": f"P{abs(hash(name)) % 10**7:07d}", "name": "DOE^JANE",
             "acc": f"A{abs(hash(name + 'a')) % 10**6:06d}", "dir": root / name}
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    normal = np.cross(ROW_SAX, COL_SAX)                                   # (0, 0.6, 0.8)
    origin = np.array([0.0, -40.0, 30.0])
    heart = np.asarray(heart_mm)
    lo, hi = heart_slices
    s0 = float((heart - origin) @ normal) - (lo + hi) / 2 * 8.0           # heart mid at slice (lo+hi)/2
    series_uid = generate_uid()
    for s in range(n_slices):
        ipp = origin + (s0 + s * 8.0) * normal
        ipp = ipp + (heart - ipp - ((heart - ipp) @ normal) * normal) - (SIZE / 2 * SPACING) * (ROW_SAX + COL_SAX) \
            + np.array([9.0, 0, 0])                                        # heart 3 px off the image centre
        uid = generate_uid() if per_slice_series else series_uid
        beating = lo <= s <= hi
        for t in range(n_phases):
            img = _image(ipp, ROW_SAX, COL_SAX, heart if beating else heart + 300, t, n_phases, beating)
            _write(folder / f"sax_{s:02d}_{t:02d}.dcm", study, uid, "cine sax", 10 + s, t + 1, ipp, ROW_SAX,
                   COL_SAX, img, t * 40.0, n_phases)
    study["slice_positions"] = n_slices
    if lge:
        uid = generate_uid()
        for s in range(n_slices):
            ipp = origin + (s0 + s * 8.0) * normal
            ipp = ipp + (heart - ipp - ((heart - ipp) @ normal) * normal) - (SIZE / 2 * SPACING) * (ROW_SAX + COL_SAX)
            img = _image(ipp, ROW_SAX, COL_SAX, heart, 0, 1, False)
            _write(folder / f"lge_{s:02d}.dcm", study, uid, "lge sax psir", 50, s + 1, ipp, ROW_SAX, COL_SAX,
                   img, 400.0, 1, lge=True)
    if cine_4ch:
        row4, col4 = np.array([1.0, 0, 0]), np.array([0, 0, -1.0])
        ipp = heart - (SIZE / 2 * SPACING) * (row4 + col4)
        uid = generate_uid()
        for t in range(n_phases):
            img = _image(ipp, row4, col4, heart, t, n_phases, True)
            _write(folder / f"4ch_{t:02d}.dcm", study, uid, "cine 4ch", 30, t + 1, ipp, row4, col4, img,
                   t * 40.0, n_phases)
    return study


def read_frames_private(instances) -> np.ndarray:
    """Minimal pixel reader for tests (the product uses indexer.dicom_io)."""
    return np.stack([pydicom.dcmread(i.path).pixel_array.astype(np.float32) for i in instances])

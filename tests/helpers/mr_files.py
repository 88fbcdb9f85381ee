"""Helpers of the indexer tests: small MR DICOM files written with pydicom, and the Sunnybrook location."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SUNNYBROOK = SHARED / "data" / "sunnybrook-cine"

needs_sunnybrook = pytest.mark.skipif(not SUNNYBROOK.is_dir(),
                                      reason=f"real data not found at {SUNNYBROOK} (/work/shared absent)")


def mr_dataset(*, study="1.2.3.4", series="1.2.3.4.1", sop=None, rows=8, cols=8, pixels=None,
               ipp=(0.0, 0.0, 0.0), iop=(1, 0, 0, 0, 1, 0), trigger=0.0, ti=None, number=1,
               scanning="GR", options="CG", cardiac_images=20, description="", slope=None,
               intercept=None, sop_class=MR, signed=False) -> Dataset:
    """A classic MR image dataset with the tags scan/typing look at; pixels default to a ramp."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality, ds.PatientID, ds.PatientName, ds.PatientSex = "MR", "P1", "TEST^P1", "F"
    ds.PatientAge, ds.StudyDate, ds.AccessionNumber = "054Y", "20200102", "A1"
    ds.Manufacturer, ds.MagneticFieldStrength = "TEST", "1.5"
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 1, number, description
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = scanning, "SK", options
    if cardiac_images is not None:
        ds.CardiacNumberOfImages = cardiac_images
    if ipp is not None:
        ds.ImagePositionPatient = list(ipp)
    if iop is not None:
        ds.ImageOrientationPatient = list(iop)
    ds.PixelSpacing, ds.SliceThickness = [1.5, 1.5], 8.0
    if trigger is not None:
        ds.TriggerTime = trigger
    if ti is not None:
        ds.InversionTime = ti
    if pixels is None:
        pixels = (np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols) * 7 + number)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept or 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def write(ds: Dataset, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_mr(path, **kw) -> Path:
    return write(mr_dataset(**kw), path)


def enhanced_mr(path, frames: int = 3, rows: int = 8, cols: int = 8) -> tuple[Path, np.ndarray]:
    """An Enhanced MR multi-frame file: frame k at z = 10k mm, trigger 40k ms, slope 2, intercept -5."""
    pixels = np.arange(frames * rows * cols, dtype=np.uint16).reshape(frames, rows, cols)
    ds = mr_dataset(sop_class=ENHANCED_MR, pixels=pixels[0], ipp=None, iop=None, trigger=None,
                    cardiac_images=frames, scanning="GR")
    del ds.ScanningSequence
    ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()
    shared = Dataset()
    ori, meas, pvt = Dataset(), Dataset(), Dataset()
    ori.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    meas.PixelSpacing, meas.SliceThickness = [1.5, 1.5], 8.0
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = 2, -5, "US"
    shared.PlaneOrientationSequence = Sequence([ori])
    shared.PixelMeasuresSequence = Sequence([meas])
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    for k in range(frames):
        item, pos, card = Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = [0, 0, 10.0 * k]
        card.NominalCardiacTriggerDelayTime = 40.0 * k
        item.PlanePositionSequence = Sequence([pos])
        item.CardiacSynchronizationSequence = Sequence([card])
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    return write(ds, path), pixels

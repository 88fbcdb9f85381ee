"""Fast byte-level DICOM Part 10 encoding for the phantom's DICOM writer (Explicit VR Little Endian
data set, optionally RLE Lossless pixel data).

pydicom's `dcmwrite` costs ~5-10 ms per small file, most of it re-encoding the ~80 elements that are
the same for every image of a series. `SeriesEncoder` encodes those once with pydicom's own element
writer and, per image, only the ~15 that change, then merges both by tag. The bytes are identical to
`Dataset.save_as(..., enforce_file_format=True)` of the merged data set (tests/phantom/
test_dicom_writer.py checks this), so files read back with any DICOM reader.
"""
from __future__ import annotations

import struct

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.pixels.encoders import RLELosslessEncoder
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, RLELossless

from pydicom import __version__ as _PYDICOM_VERSION

PREAMBLE = b"\x00" * 128 + b"DICM"
# RLE plugins do not all write the same bytes (gdcm segments differ from pydicom's). pylibjpeg-rle
# matches pydicom's pure-numpy encoder byte for byte and is ~15x faster; fall back to pydicom's own,
# so files are identical whichever plugins an environment has.
RLE_PLUGIN = "pylibjpeg" if "pylibjpeg" in RLELosslessEncoder.available_plugins else "pydicom"
IMPLEMENTATION_VERSION = "PYDICOM " + _PYDICOM_VERSION   # what pydicom itself writes


def encode_elements(ds: Dataset) -> dict[int, bytes]:
    """Explicit VR Little Endian bytes of each top-level element of `ds`, keyed by tag."""
    out = {}
    for elem in ds:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_data_element(fp, elem)
        out[int(elem.tag)] = fp.getvalue()
    return out


def file_meta(sop_class_uid: str, sop_instance_uid: str, compressed: bool) -> FileMetaDataset:
    """The File Meta Information group as pydicom's enforce_file_format would complete it."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = RLELossless if compressed else ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta


def _meta_bytes(meta: FileMetaDataset) -> bytes:
    """Group 0002 with its (0002,0000) group length, Explicit VR Little Endian."""
    body = b"".join(v for _, v in sorted(encode_elements(meta).items()))
    return b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(body)) + body


def pixel_element(img: np.ndarray, compressed: bool, signed: bool) -> DataElement:
    """(H, W) 12-bit stored values as PixelData: native OW, or one encapsulated RLE frame (OB)."""
    img = np.ascontiguousarray(img)
    if not compressed:
        return DataElement(0x7FE00010, "OW", img.tobytes())
    frame = RLELosslessEncoder.encode(
        img, rows=img.shape[0], columns=img.shape[1], samples_per_pixel=1, bits_allocated=16,
        bits_stored=12, pixel_representation=int(signed), photometric_interpretation="MONOCHROME2",
        number_of_frames=1, encoding_plugin=RLE_PLUGIN)
    return DataElement(0x7FE00010, "OB", encapsulate([frame]), is_undefined_length=True)


class SeriesEncoder:
    """Encodes the files of one series: constant elements once, per-image elements each time."""

    def __init__(self, constant: Dataset, sop_class_uid: str, compressed: bool):
        self.constant = encode_elements(constant)   # tag -> bytes
        self.sop_class_uid = sop_class_uid
        self.compressed = compressed

    def file_bytes(self, per_image: Dataset) -> bytes:
        """A complete Part 10 file: preamble, meta group, the merged data set in tag order."""
        elems = {**self.constant, **encode_elements(per_image)}
        meta = file_meta(self.sop_class_uid, str(per_image.SOPInstanceUID), self.compressed)
        return PREAMBLE + _meta_bytes(meta) + b"".join(v for _, v in sorted(elems.items()))

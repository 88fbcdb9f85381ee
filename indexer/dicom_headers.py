"""One file's DICOM header -> records: validation plus InstanceRecord(s) and study/series fields.

`read_header(path)` reads the header only (pixels are not loaded; the common classic MR file through
dicom_fast's byte-level walk, anything else through pydicom), checks that the file is an MR image
with pixel data, and returns a `FileHeader` (one InstanceRecord per frame; Enhanced MR multi-frame
files get their per-frame geometry and timing from the functional groups). Anything unusable raises
`NotDicomError` with a message that says what is wrong. scan.py turns those into ErrorRecords.
"""
from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom import config
from pydicom.errors import BytesLengthException
from pydicom.sequence import Sequence

from cmr_search.indexer.dicom_fast import FastDataset, read_fast
from cmr_search.indexer.errors import NotDicomError
from cmr_search.indexer.records import InstanceRecord

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
LEGACY_ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.4"
IMAGE_SOP_CLASSES = {MR_IMAGE, ENHANCED_MR, LEGACY_ENHANCED_MR}
MULTIFRAME_SOP_CLASSES = {ENHANCED_MR, LEGACY_ENHANCED_MR}
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_NON_IMAGE_PREFIXES = {  # SOP class prefix -> what it is (for the error message)
    "1.2.840.10008.5.1.4.1.1.88.": "structured report",
    "1.2.840.10008.5.1.4.1.1.11.": "presentation state",
    "1.2.840.10008.5.1.4.1.1.104.": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.66": "raw data / registration",
    "1.2.840.10008.5.1.4.1.1.4.2": "MR spectroscopy",
}
UID_CHARS = re.compile(r"[0-9.]+")   # DICOM UIDs (invalid-but-common leading zeros and lengths allowed)
PIXEL_MODULE = ("SamplesPerPixel", "PhotometricInterpretation", "BitsStored", "PixelRepresentation")
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"     # (7FE0,0010) little endian
STUDY_FIELDS = ("accession_number", "patient_id", "patient_name", "birth_date", "sex", "age",
                "study_date", "manufacturer", "model_name", "field_strength", "height_m",
                "weight_kg")
SERIES_FIELDS = ("series_number", "description", "protocol", "sop_class_uid", "scanning_sequence",
                 "sequence_variant", "scan_options", "sequence_name", "image_type",
                 "cardiac_number_of_images")


@dataclass
class FileHeader:
    """What one file contributes: its study/series keys and fields, and its frames."""
    path: str
    study_uid: str
    series_uid: str
    study: dict                                  # StudyRecord fields (STUDY_FIELDS)
    series: dict                                 # SeriesRecord fields (SERIES_FIELDS)
    instances: list[InstanceRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # geometry problems (instance kept)


@contextlib.contextmanager
def quiet_pydicom():
    """Real archives have invalid UIDs (leading zeros), dates, VRs: keep the values, skip the noise."""
    old = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        config.settings.reading_validation_mode = old


def looks_like_dicom(head: bytes) -> bool:
    """Part 10 preamble, or a raw dataset starting with a group 0002/0008 tag (old archives): the files the
    indexer parses (an upload checks the same files first: ui/app/upload.py)."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    return len(head) >= 4 and struct.unpack("<H", head[:2])[0] in (0x0002, 0x0008)


def _sop_class_problem(sop: str) -> str | None:
    if sop in IMAGE_SOP_CLASSES:
        return None
    name = pydicom.uid.UID(sop).name
    for prefix, what in _NON_IMAGE_PREFIXES.items():
        if sop.startswith(prefix):
            return f"non-image SOP class ({what}: {name}); nothing to index, skipped"
    if sop == DICOMDIR_SOP_CLASS:
        return "DICOMDIR media directory, not an image"
    return (f"SOP class {name} is not an MR image; only MR Image Storage and Enhanced MR Image "
            "Storage are indexed")


def _check_pixel_data(fp, size: int, ds) -> None:
    """fp stands just after the header (dcmread stop_before_pixels). Check Pixel Data is there and
    complete, without reading it."""
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8 or head[:4] != PIXEL_DATA_TAG:
        raise NotDicomError("DICOM without Pixel Data (7FE0,0010): nothing to show; skipped")
    if ds.original_encoding[0]:     # implicit VR: tag, 4-byte length
        length, hdr = struct.unpack("<I", head[4:8])[0], 8
    else:                           # explicit VR OB/OW: tag, VR, 2 reserved, 4-byte length
        length, hdr = struct.unpack("<I", head[8:12])[0], 12
    if length == 0xFFFFFFFF:
        fp.seek(start + hdr)
        _check_fragments(fp, size)
        return
    if start + hdr + length > size:
        raise NotDicomError(f"truncated file: Pixel Data needs {length} bytes, only "
                            f"{size - start - hdr} present; re-export or re-copy the file")
    need = _native_pixel_bytes(ds)
    if length < need:
        raise NotDicomError(f"Pixel Data holds {length} bytes but Rows x Columns x frames x samples x "
                            f"bits need {need}: the header or the data is corrupt; re-export the file")


def _check_fragments(fp, size: int) -> None:
    """Encapsulated (compressed) Pixel Data: walk the item headers (seeking over their contents) up to
    the sequence delimiter; a file cut short ends before it."""
    while True:
        item = fp.read(8)
        if len(item) < 8:
            break
        tag, length = item[:4], struct.unpack("<I", item[4:])[0]
        if tag == b"\xfe\xff\xdd\xe0":            # (FFFE,E0DD) sequence delimiter: complete
            return
        if tag != b"\xfe\xff\x00\xe0" or fp.tell() + length > size:   # not an item, or cut short
            break
        fp.seek(length, 1)
    raise NotDicomError("truncated or corrupt file: the compressed Pixel Data fragments end before "
                        "their sequence delimiter; re-export or re-copy the file")


def _native_pixel_bytes(ds) -> int:
    """Bytes of uncompressed pixel data the image header asks for."""
    try:
        n = int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
        return n * int(ds.get("SamplesPerPixel", 1) or 1) * int(ds.BitsAllocated) // 8
    except (TypeError, ValueError, AttributeError):
        return 0


def _check_image_tags(ds) -> None:
    """Image pixel module values the decoder relies on; corrupt values are caught here, at scan."""
    missing = [kw for kw in PIXEL_MODULE if kw not in ds]
    if missing:
        raise NotDicomError(f"image header lacks {', '.join(missing)}: its pixels cannot be decoded; "
                            "the file is corrupt, re-export it")
    spp, bits = ds.get("SamplesPerPixel", 1), ds.get("BitsAllocated", None)
    if spp not in (1, None):
        raise NotDicomError(f"SamplesPerPixel is {spp}: only grayscale MR images are indexed (a "
                            "corrupt header if this is an MR image)")
    if bits not in (8, 16, 32):
        raise NotDicomError(f"BitsAllocated is {bits}, not 8, 16 or 32: corrupt image header; "
                            "re-export the file")
    rows, cols = ds.get("Rows", None), ds.get("Columns", None)
    if not (isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0):
        raise NotDicomError(f"Rows x Columns is {rows!r} x {cols!r}, not two positive numbers: corrupt "
                            "image header; re-export the file")


def _read_dataset(path: str, size: int):
    if size == 0:
        raise NotDicomError("empty file (0 bytes); re-copy it from the source")
    with open(path, "rb") as fp:
        if not looks_like_dicom(fp.read(132)):
            raise NotDicomError("not a DICOM file (no 'DICM' marker and no DICOM tags at the start)")
        fp.seek(0)
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
        except Exception as e:       # pydicom's parser on corrupt bytes: zlib.error, OSError, ...
            raise NotDicomError(f"unreadable DICOM header ({type(e).__name__}: {e}); the file is "
                                "corrupt or truncated") from None
        sop = str(ds.get("SOPClassUID", "") or "")
        if not sop:
            raise NotDicomError("DICOM header has no SOP Class UID: truncated or not a DICOM "
                                "image; re-export it")
        problem = _sop_class_problem(sop)
        if problem:
            raise NotDicomError(problem)
        if "Rows" not in ds or "Columns" not in ds or "BitsAllocated" not in ds:
            raise NotDicomError("DICOM image header lacks Rows/Columns/BitsAllocated: truncated "
                                "or corrupt header")
        _check_image_tags(ds)
        deflated = str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", "")).endswith(".99")
        if ds.original_encoding[1] and not deflated:   # positions are file offsets: check
            _check_pixel_data(fp, size, ds)
    return ds


# --- value helpers -------------------------------------------------------------------------------
def _s(ds, kw: str) -> str:
    v = ds.get(kw, "")
    if v is None:
        return ""
    if isinstance(v, pydicom.multival.MultiValue):
        return "\\".join(str(x) for x in v)
    return str(v).strip()


def _f(ds, kw: str) -> float | None:
    try:
        v = ds.get(kw, None)
        if isinstance(v, pydicom.multival.MultiValue):
            v = v[0] if len(v) else None
        return None if v is None or v == "" else float(v)
    except (TypeError, ValueError, OverflowError):     # OverflowError: IS 'inf'
        return None


def _i(ds, kw: str) -> int | None:
    v = _f(ds, kw)
    return None if v is None or not np.isfinite(v) else int(v)


def _floats(ds, kw: str, n: int) -> tuple[float, ...] | None:
    try:
        v = ds.get(kw, None)
        vals = tuple(float(x) for x in v) if v is not None else ()
    except (TypeError, ValueError, OverflowError):     # OverflowError: IS 'inf'
        return None
    return vals if len(vals) == n and all(np.isfinite(vals)) else None


def _age(ds, study_date: str, birth: str) -> float | None:
    m = re.fullmatch(r"(\d{1,3})([YMWD])", _s(ds, "PatientAge").upper())
    if m:
        return round(int(m.group(1)) / {"Y": 1, "M": 12, "W": 52.18, "D": 365.25}[m.group(2)], 2)
    try:
        sy, sm, sd = int(study_date[:4]), int(study_date[4:6]), int(study_date[6:8])
        by, bm, bd = int(birth[:4]), int(birth[4:6]), int(birth[6:8])
        if not (1 <= sm <= 12 and 1 <= bm <= 12 and 1 <= sd <= 31 and 1 <= bd <= 31 and by > 1850):
            return None
        years = sy - by - ((sm, sd) < (bm, bd))
        return float(years) if 0 <= years < 130 else None
    except (ValueError, IndexError):
        return None


def _study_fields(ds) -> dict:
    study_date, birth = _s(ds, "StudyDate"), _s(ds, "PatientBirthDate")
    fs = _f(ds, "MagneticFieldStrength")
    if fs is not None and fs > 100:          # some scanners write gauss (15000 = 1.5 T)
        fs = fs / 10000.0
    return dict(accession_number=_s(ds, "AccessionNumber"), patient_id=_s(ds, "PatientID"),
                patient_name=_s(ds, "PatientName"), birth_date=birth, sex=_s(ds, "PatientSex"),
                age=_age(ds, study_date, birth), study_date=study_date,
                manufacturer=_s(ds, "Manufacturer"), model_name=_s(ds, "ManufacturerModelName"),
                field_strength=fs, height_m=_f(ds, "PatientSize"), weight_kg=_f(ds, "PatientWeight"))


def _enhanced_sequence(ds) -> tuple[str, str]:
    """Enhanced MR has no ScanningSequence: build 'GR'/'SE' (+ 'IR') from the functional groups."""
    pulse = _s(ds, "EchoPulseSequence")
    ir = ""
    for item in (_item(ds, "SharedFunctionalGroupsSequence"), _item(ds, "PerFrameFunctionalGroupsSequence")):
        mod = _item(item, "MRModifierSequence") if item is not None else None
        if mod is not None and _s(mod, "InversionRecovery") == "YES":
            ir = "\\IR"
    seq = {"GRADIENT": "GR", "SPIN": "SE", "BOTH": "SE\\GR"}.get(pulse, "")
    return (seq + ir).lstrip("\\"), ""


def _series_fields(ds) -> dict:
    scanning = _s(ds, "ScanningSequence")
    if not scanning and str(ds.SOPClassUID) in MULTIFRAME_SOP_CLASSES:
        scanning, _ = _enhanced_sequence(ds)
    return dict(series_number=_i(ds, "SeriesNumber"), description=_s(ds, "SeriesDescription"),
                protocol=_s(ds, "ProtocolName"), sop_class_uid=str(ds.SOPClassUID),
                scanning_sequence=scanning, sequence_variant=_s(ds, "SequenceVariant"),
                scan_options=_s(ds, "ScanOptions"),
                sequence_name=_s(ds, "SequenceName") or _s(ds, "PulseSequenceName"),
                image_type=_s(ds, "ImageType"),
                cardiac_number_of_images=_i(ds, "CardiacNumberOfImages"))


def geometry_problems(ipp, iop) -> list[str]:
    """Why an instance's geometry cannot be trusted (empty list when it is fine)."""
    problems = []
    if ipp is None:
        problems.append("ImagePositionPatient missing or not 3 numbers")
    if iop is None:
        problems.append("ImageOrientationPatient missing or not 6 numbers")
    else:
        r, c = np.asarray(iop[:3]), np.asarray(iop[3:])
        if abs(np.linalg.norm(r) - 1) > 0.01 or abs(np.linalg.norm(c) - 1) > 0.01 \
                or abs(float(r @ c)) > 0.01:
            problems.append("ImageOrientationPatient is not orthonormal")
    return problems


def _item(ds, seq: str, i: int = 0):
    """Item i of sequence `seq` of ds, or None (absent, too short, or not a sequence: corrupt VR)."""
    items = ds.get(seq, None)
    return items[i] if isinstance(items, Sequence) and i < len(items) else None


def frame_item(ds, i: int, seq: str):
    """The first item of functional group `seq` for frame i (per-frame first, then shared)."""
    for item in (_item(ds, "PerFrameFunctionalGroupsSequence", i), _item(ds, "SharedFunctionalGroupsSequence")):
        sub = _item(item, seq) if item is not None else None
        if sub is not None:
            return sub
    return None


def _frame_geometry(ds, i: int) -> dict:
    if str(ds.SOPClassUID) not in MULTIFRAME_SOP_CLASSES:
        return dict(ipp=_floats(ds, "ImagePositionPatient", 3),
                    iop=_floats(ds, "ImageOrientationPatient", 6),
                    pixel_spacing=_floats(ds, "PixelSpacing", 2),
                    slice_thickness=_f(ds, "SliceThickness"), trigger_time=_f(ds, "TriggerTime"),
                    inversion_time=_f(ds, "InversionTime"))
    pos, ori = frame_item(ds, i, "PlanePositionSequence"), frame_item(ds, i, "PlaneOrientationSequence")
    meas, card = frame_item(ds, i, "PixelMeasuresSequence"), frame_item(ds, i, "CardiacSynchronizationSequence")
    mod = frame_item(ds, i, "MRModifierSequence")
    ti = _f(mod, "InversionTimes") if mod is not None else None
    return dict(ipp=_floats(pos, "ImagePositionPatient", 3) if pos else None,
                iop=_floats(ori, "ImageOrientationPatient", 6) if ori else None,
                pixel_spacing=_floats(meas, "PixelSpacing", 2) if meas else None,
                slice_thickness=_f(meas, "SliceThickness") if meas else None,
                trigger_time=_f(card, "NominalCardiacTriggerDelayTime") if card else None,
                inversion_time=ti if ti is not None else _f(ds, "InversionTime"))


def _raw_syntax(ds) -> str:
    """Transfer syntax of a dataset without file meta, from how pydicom decoded it."""
    implicit, little = ds.original_encoding
    if implicit:
        return "1.2.840.10008.1.2"
    return "1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2"


# pydicom converts values on first use: a corrupt value (a wrong length for its VR, an unknown VR, a
# sequence whose items do not parse, an IS of 'inf') raises then, not at dcmread.
LAZY_VALUE_ERRORS = (BytesLengthException, NotImplementedError, struct.error, OSError, OverflowError)


def read_header(path: str) -> FileHeader:
    """Header of one file -> FileHeader. Raises NotDicomError (message says what is wrong)."""
    st = os.stat(path)
    with quiet_pydicom():
        try:
            ds = (read_fast(path, st.st_size) if st.st_size else None) or _read_dataset(path, st.st_size)
            return file_header(path, st, ds)
        except LAZY_VALUE_ERRORS as e:
            if isinstance(e, OSError) and e.errno is not None:      # a real I/O error, not a value
                raise
            raise NotDicomError(f"corrupt header value ({type(e).__name__}: {e}); the file cannot be "
                                "read safely, re-export it") from None


def _frame_count(ds, size: int) -> int:
    """NumberOfFrames, checked: a corrupt count must not make millions of records (every frame takes
    8 bytes at least, even compressed)."""
    n = _i(ds, "NumberOfFrames") or 1
    if not 1 <= n <= max(1, size // 8):
        raise NotDicomError(f"NumberOfFrames is {n}, impossible for a file of {size} bytes: corrupt "
                            "header; re-export the file")
    return n


def file_header(path: str, st: os.stat_result, ds) -> FileHeader:
    """A read header dataset (a file's, or DICOMweb metadata as a pydicom Dataset) -> FileHeader."""
    study_uid, series_uid = _s(ds, "StudyInstanceUID"), _s(ds, "SeriesInstanceUID")
    sop_uid = _s(ds, "SOPInstanceUID")
    if not (study_uid and series_uid and sop_uid):
        raise NotDicomError("missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID; "
                            "the file cannot be placed in a study")
    for kw, uid in (("StudyInstanceUID", study_uid), ("SeriesInstanceUID", series_uid),
                    ("SOPInstanceUID", sop_uid)):
        if not UID_CHARS.fullmatch(uid):
            raise NotDicomError(f"{kw} {uid!r} holds characters other than digits and dots: a "
                                "corrupt header, the file cannot be placed safely; re-export it")
    n_frames = _frame_count(ds, st.st_size)
    tsyntax = ds.transfer_syntax if isinstance(ds, FastDataset) else \
        str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", "")) or _raw_syntax(ds)
    head = FileHeader(path, study_uid, series_uid, _study_fields(ds), _series_fields(ds))
    for i in range(n_frames):
        geo = _frame_geometry(ds, i)
        head.instances.append(InstanceRecord(
            path=path, frame=i, sop_instance_uid=sop_uid, instance_number=_i(ds, "InstanceNumber"),
            rows=int(ds.Rows), cols=int(ds.Columns), transfer_syntax=tsyntax,
            mtime_ns=st.st_mtime_ns, size=st.st_size, **geo))
        for p in geometry_problems(geo["ipp"], geo["iop"]):
            msg = f"{p} (frame {i}); its geometry is unreliable" if n_frames > 1 \
                else f"{p}; instance kept, its geometry is unreliable"
            if msg not in head.warnings:
                head.warnings.append(msg)
    return head

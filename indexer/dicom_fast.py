"""Fast path for the common DICOM file: a classic MR image, uncompressed, little endian.

    head = parse(raw_bytes)          # FastDataset, or None: use pydicom (dcmread) instead

pydicom parses every element of every file into Python objects (~0.6 ms per header, more with value
conversion); an archive of 400 files per study spends most of its scan time there. Here the elements are
walked with struct straight from the file's bytes, only the ~45 tags the indexer reads are decoded, and
the position of Pixel Data is noted so that its bytes are read without a second parse. The result answers
`get(keyword, default)`, `keyword in ds` and attribute access with the values pydicom would give (text
right-stripped per value, multi-values as MultiValue, US as int), so dicom_headers / dicom_io use it in
place of a pydicom Dataset. Anything unusual -- no Part 10 preamble, another transfer syntax or SOP
class, an unknown or unexpected VR, undefined lengths outside sequences, other character sets with
non-ASCII text, incomplete Pixel Data -- gives None, and the caller falls back to pydicom, whose
behaviour (and error messages) therefore stay the reference.
"""
from __future__ import annotations

import struct

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.multival import MultiValue

EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
KEYWORDS = (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate", "AccessionNumber",
    "Manufacturer", "SeriesDescription", "ManufacturerModelName", "PatientName", "PatientID",
    "PatientBirthDate", "PatientSex", "PatientAge", "PatientSize", "PatientWeight", "ScanningSequence",
    "SequenceVariant", "ScanOptions", "SequenceName", "SliceThickness", "InversionTime",
    "MagneticFieldStrength", "ProtocolName", "TriggerTime", "CardiacNumberOfImages", "PulseSequenceName",
    "EchoPulseSequence", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "InstanceNumber",
    "ImagePositionPatient", "ImageOrientationPatient", "SamplesPerPixel", "PhotometricInterpretation",
    "NumberOfFrames", "Rows", "Columns", "PixelSpacing", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "RescaleIntercept", "RescaleSlope")
WANTED = {tag_for_keyword(k): (k, dictionary_VR(tag_for_keyword(k))) for k in KEYWORDS}
PIXEL_DATA = 0x7FE00010
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
SHORT_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
             b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
SIMPLE_CHARSETS = {"", "ISO_IR 6", "ISO_IR 100", "ISO 2022 IR 6"}
UNDEFINED = 0xFFFFFFFF
HEADER_BYTES = 1 << 16       # read this much of a file to find its header (a header is ~2 KB)


class _Bad(Exception):
    """Outside the fast path (the caller uses pydicom)."""


class FastDataset:
    """The decoded tags of one file, answering like a pydicom Dataset for those tags."""

    def __init__(self, found: dict, encoding: str, syntax: str, pixel_offset: int, pixel_length: int,
                 raw: bytes):
        self._found, self._encoding = found, encoding    # keyword -> (VR, raw bytes), decoded on use
        self._values: dict = {}
        self.transfer_syntax = syntax
        self.pixel_offset = pixel_offset      # first byte of the Pixel Data value in the file
        self.pixel_length = pixel_length
        self._raw = raw

    def get(self, kw: str, default=None):
        if kw in self._values:
            return self._values[kw]
        if kw not in self._found:
            return default
        vr, raw = self._found[kw]
        v = self._values[kw] = _value(raw, vr, self._encoding)
        return v

    def __contains__(self, kw: str) -> bool:
        return kw in self._found or (kw == "PixelData" and self.pixel_length > 0)

    def __getattr__(self, kw: str):
        if kw.startswith("_"):
            raise AttributeError(kw)
        if kw == "PixelData":
            end = self.pixel_offset + self.pixel_length
            if len(self._raw) < end:
                raise AttributeError("PixelData was not read (header bytes only)")
            return memoryview(self._raw)[self.pixel_offset:end]
        if kw not in self._found:
            raise AttributeError(kw)
        return self.get(kw)


def _text(raw: bytes, vr: str, encoding: str):
    text = raw.decode(encoding)
    if vr in ("LT", "ST", "UT"):
        return text.rstrip("\0 ")
    parts = [p.rstrip("\0 ") for p in text.split("\\")]
    return parts[0] if len(parts) == 1 else MultiValue(str, parts)


def _value(raw: bytes, vr: str, encoding: str):
    if vr == "US":
        if len(raw) != 2:
            raise _Bad("US value of odd length")
        return struct.unpack("<H", raw)[0]
    if not raw:                                       # pydicom: empty numbers None, empty text ''
        return None if vr in ("DS", "IS") else ""
    return _text(raw, vr, encoding)


def _element(buf: bytes, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """(tag, VR, value length, value offset) of the element at pos."""
    if pos + 8 > len(buf):
        raise _Bad("ran out of header bytes")
    group, elem = struct.unpack_from("<HH", buf, pos)
    tag = group << 16 | elem
    if not explicit:
        return tag, b"", struct.unpack_from("<I", buf, pos + 4)[0], pos + 8
    vr = buf[pos + 4:pos + 6]
    if vr in SHORT_VRS:
        return tag, vr, struct.unpack_from("<H", buf, pos + 6)[0], pos + 8
    if vr in LONG_VRS and pos + 12 <= len(buf):
        return tag, vr, struct.unpack_from("<I", buf, pos + 8)[0], pos + 12
    raise _Bad(f"unknown VR {vr!r}")


def _skip_sequence(buf: bytes, pos: int, explicit: bool, depth: int = 0) -> int:
    """pos after an undefined-length sequence starting at pos (items walked to the delimiter)."""
    if depth > 8:
        raise _Bad("sequences nested too deep")
    while True:
        tag, _, length, start = _element(buf, pos, False)          # item tags have no VR
        if tag == 0xFFFEE0DD:
            return start
        if tag != 0xFFFEE000:
            raise _Bad("not an item inside a sequence")
        pos = start + length if length != UNDEFINED else _skip_item(buf, start, explicit, depth)


def _skip_item(buf: bytes, pos: int, explicit: bool, depth: int) -> int:
    while True:
        group, elem = struct.unpack_from("<HH", buf, pos) if pos + 4 <= len(buf) else (0, 0)
        if (group, elem) == (0xFFFE, 0xE00D):
            return pos + 8
        tag, vr, length, start = _element(buf, pos, explicit)
        if length == UNDEFINED:
            if vr not in (b"SQ", b"") or tag >> 16 == 0xFFFE:
                raise _Bad("undefined length outside a sequence")
            pos = _skip_sequence(buf, start, explicit, depth + 1)
        else:
            pos = start + length


def _meta(buf: bytes) -> tuple[str, int]:
    """(transfer syntax, offset of the data set) from the file meta group."""
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise _Bad("no Part 10 preamble")
    pos, syntax = 132, ""
    while pos + 8 <= len(buf) and buf[pos:pos + 2] == b"\x02\x00":
        tag, _, length, start = _element(buf, pos, True)
        if length == UNDEFINED:
            raise _Bad("undefined length in file meta")
        if tag == 0x00020010:
            syntax = buf[start:start + length].decode("ascii", "replace").rstrip("\0 ")
        pos = start + length
    return syntax, pos


def _walk(buf: bytes, pos: int, explicit: bool) -> tuple[dict, int, int]:
    """Wanted raw values (keyword -> (VR, bytes)), Pixel Data value offset and length. The common
    element is handled inline (this loop runs ~90 times per file); the rest goes through _element."""
    found, last, n, unpack, short = {}, 0, len(buf), struct.unpack_from, SHORT_VRS
    while True:
        if explicit and pos + 8 <= n:
            group, elem, vr, length = unpack("<HH2sH", buf, pos)
            if vr in short:
                tag, start = group << 16 | elem, pos + 8
            else:
                tag, vr, length, start = _element(buf, pos, explicit)
        else:
            tag, vr, length, start = _element(buf, pos, explicit)
        if tag <= last:
            raise _Bad("tags out of order")
        last = tag
        if tag == PIXEL_DATA:
            if vr not in (b"OB", b"OW", b"") or length == UNDEFINED:
                raise _Bad("encapsulated or odd Pixel Data")
            return found, start, length
        if tag >> 16 == 0xFFFE or tag < 0x00080000:
            raise _Bad("item or meta tag in the data set")
        if length == UNDEFINED:
            if vr not in (b"SQ", b""):
                raise _Bad("undefined length outside a sequence")
            pos = _skip_sequence(buf, start, explicit)
            continue
        pos = start + length
        if pos > n:
            raise _Bad("value runs past the bytes read")
        if tag in WANTED:
            kw, want = WANTED[tag]
            if explicit and vr.decode() != want:
                raise _Bad(f"{kw} has VR {vr!r}")
            found[kw] = (want, buf[start:pos])


def _encoding(found: dict) -> str:
    """Python codec of the text values; _Bad for character sets this path does not decode."""
    charset = _text(found["SpecificCharacterSet"][1], "CS", "latin-1") \
        if "SpecificCharacterSet" in found else ""
    charset = charset if isinstance(charset, str) else "\\".join(charset)
    if charset == "ISO_IR 192":
        for _, raw in found.values():
            raw.decode("utf-8")           # UnicodeDecodeError (a ValueError): pydicom's to handle
        return "utf-8"
    if charset not in SIMPLE_CHARSETS and any(max(raw, default=0) >= 0x80 for _, raw in found.values()):
        raise _Bad(f"character set {charset}")
    return "latin-1"


def parse(buf: bytes, size: int | None = None) -> FastDataset | None:
    """A classic MR image file's bytes (its header at least) -> FastDataset; None when outside the fast
    path. size: the file's full size when buf holds only its start (Pixel Data must fit in it)."""
    try:
        syntax, pos = _meta(buf)
        if syntax not in (EXPLICIT_LE, IMPLICIT_LE):
            return None
        found, offset, length = _walk(buf, pos, syntax == EXPLICIT_LE)
        ds = FastDataset(found, _encoding(found), syntax, offset, length, buf)
        if ds.get("SOPClassUID") != MR_IMAGE or (ds.get("NumberOfFrames") or 1) not in (1, "1"):
            return None
        need = _pixel_bytes(ds)
    except (_Bad, struct.error, ValueError):
        return None
    if need is None or length < need or offset + length > (len(buf) if size is None else size):
        return None
    return ds


def _pixel_bytes(ds: FastDataset) -> int | None:
    """Bytes one uncompressed grayscale frame needs; None when the pixel module is not plain."""
    if not all(kw in ds for kw in ("Rows", "Columns", "BitsAllocated", "BitsStored", "SamplesPerPixel",
                                   "PhotometricInterpretation", "PixelRepresentation")):
        return None
    rows, cols, bits, stored = ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored
    if ds.SamplesPerPixel != 1 or bits not in (8, 16, 32) or not 0 < stored <= bits \
            or ds.PixelRepresentation not in (0, 1) or not rows or not cols:
        return None
    return rows * cols * bits // 8


def read_fast(path: str, size: int) -> FastDataset | None:
    """The header of the file at path through the fast path (its first HEADER_BYTES only)."""
    with open(path, "rb") as f:
        buf = f.read(HEADER_BYTES)
    return parse(buf, size)

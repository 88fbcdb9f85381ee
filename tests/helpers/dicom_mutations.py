"""Input fuzzing of the DICOM reader (tests/indexer/test_fuzz.py): seed files, mutations, and the one
function that runs an untrusted file through every entry point the indexer uses on it.

    seeds = seed_files(tmp)                          # {name: bytes}: phantom + hand-made variants
    ops = random_ops(rng, seeds["tiny_cine"], elements(seeds["tiny_cine"]))
    outcome = read_untrusted(write(tmp / "x.dcm", apply_ops(seeds["tiny_cine"], ops)))

A mutation is a list of ops, each a plain tuple (so hypothesis can draw them and an `@example` can
spell one out): ("flip", pos, xor) ("truncate", pos) ("insert", pos, bytes) ("delete", pos, n)
("length", element, value) ("swap_lengths", i, j) ("vr", element, two bytes) ("value", element, bytes)
("random", bytes) (the whole file replaced). Positions past the end wrap; element indexes refer to
`elements(seed)`, the element headers of the unmutated seed, and also wrap.
"""
from __future__ import annotations

import os
import random
import struct
from pathlib import Path
from typing import NamedTuple

import pydicom
from pydicom.datadict import dictionary_VR

from cmr_search.indexer.dicom_fast import LONG_VRS, parse
from cmr_search.indexer.dicom_headers import quiet_pydicom, read_header
from cmr_search.indexer.dicom_io import check_decodable, read_frames
from cmr_search.indexer.errors import DecoderMissingError, NotDicomError, PixelReadError

SEED_NAMES = ("tiny_cine", "tiny_lge", "bench_cine", "small_explicit", "small_implicit", "small_deflated",
              "small_big_endian", "small_no_preamble", "enhanced")
SOP = "1.2.826.0.1.3680043.8.498.1"          # fixed SOPInstanceUID: seeds are the same bytes every run
# What each entry point may raise on a bad file (docs/fuzzing.md); anything else is a bug.
HEADER_ERRORS = (NotDicomError,)
PIXEL_ERRORS = (DecoderMissingError, PixelReadError)        # CorruptPixelsError is a PixelReadError
HUGE_LENGTHS = (0, 1, 2, 3, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF)
VRS = (b"OB", b"OW", b"SQ", b"UN", b"UT", b"US", b"UL", b"SS", b"DS", b"IS", b"CS", b"UI", b"LO", b"PN",
       b"DA", b"FD", b"AT", b"\0\0", b"zz")
VALUES = (b"", b"\0", b"9999999999", b"-1", b"0", b"65536", b"1e308", b"nan", b"inf", b"\\\\\\", b"1.2.",
          b"\xff\xfe\xff", b"1\\2\\3\\4\\5\\6\\7", b"ISO_IR 192", b"ISO 2022 IR 87", b"\xe9\xe8",
          b"1.2.840.10008.1.2.5", b"1.2.840.10008.1.2.4.50", b"1.2.840.10008.5.1.4.1.1.4.1",
          b"1.2.840.10008.1.2.1.99", b"1.2.840.10008.1.2.2", struct.pack("<H", 0), struct.pack("<H", 65535),
          struct.pack("<H", 3), struct.pack("<H", 12), struct.pack("<I", 0xFFFFFFFF))


class Element(NamedTuple):
    """One element header in a seed: where it starts, where its length field is and how wide."""
    start: int
    vr_at: int | None          # offset of the 2 VR bytes (explicit VR), else None
    length_at: int
    length_size: int           # 2 or 4 bytes
    value_at: int
    length: int


def _header(buf: bytes, pos: int, explicit: bool) -> tuple[int, Element, bytes]:
    group, elem = struct.unpack_from("<HH", buf, pos)
    tag = group << 16 | elem
    if group == 0xFFFE or not explicit:             # item headers and implicit VR: tag + 4-byte length
        length = struct.unpack_from("<I", buf, pos + 4)[0]
        vr = b"" if group == 0xFFFE else _dictionary_vr(tag)
        return tag, Element(pos, None, pos + 4, 4, pos + 8, length), vr
    vr = buf[pos + 4:pos + 6]
    if vr in LONG_VRS:
        return tag, Element(pos, pos + 4, pos + 8, 4, pos + 12, struct.unpack_from("<I", buf, pos + 8)[0]), vr
    return tag, Element(pos, pos + 4, pos + 6, 2, pos + 8, struct.unpack_from("<H", buf, pos + 6)[0]), vr


def _dictionary_vr(tag: int) -> bytes:
    try:
        return dictionary_VR(tag).encode()[:2]
    except KeyError:
        return b"UN"


def elements(buf: bytes) -> list[Element]:
    """Every element header of a file (meta group, data set, inside sequences and items, Pixel Data
    fragments), in file order; walks into sequences instead of over them. Deflated and big endian data
    sets: the meta group only."""
    out, pos = [], 132 if buf[128:132] == b"DICM" else 0
    syntax = buf[pos:pos + 400]
    explicit = b"1.2.840.10008.1.2\0" not in syntax
    meta_only = b"1.2.840.10008.1.2.1.99" in syntax or b"1.2.840.10008.1.2.2\0" in syntax
    in_fragments = False
    while pos + 12 <= len(buf):
        meta = buf[pos:pos + 2] == b"\x02\x00"
        if meta_only and not meta:
            break
        tag, el, vr = _header(buf, pos, explicit or meta)
        out.append(el)
        if tag == 0x7FE00010 and el.length == 0xFFFFFFFF:
            in_fragments = True                      # encapsulated Pixel Data: items hold bytes
        if tag >> 16 == 0xFFFE:
            pos = el.value_at + (el.length if in_fragments and tag == 0xFFFEE000 else 0)
        elif vr == b"SQ" or el.length == 0xFFFFFFFF:
            pos = el.value_at                        # descend into the sequence
        else:
            pos = el.value_at + el.length
    return out


def _length_bytes(el: Element, n: int) -> bytes:
    return struct.pack("<I" if el.length_size == 4 else "<H", n % (1 << 8 * el.length_size))


def _put(buf: bytearray, at: int, data: bytes) -> None:
    buf[at:at + len(data)] = data[:max(0, len(buf) - at)]


def _apply(buf: bytearray, op: tuple, els: list[Element]) -> bytearray:
    kind, n = op[0], max(len(buf), 1)
    el = els[op[1] % len(els)] if kind in ("length", "vr", "value", "swap_lengths") and els else None
    if kind == "flip" and buf:
        buf[op[1] % n] ^= op[2] or 1
    elif kind == "truncate":
        del buf[op[1] % n:]
    elif kind == "insert":
        buf[op[1] % n:op[1] % n] = op[2]
    elif kind == "delete":
        del buf[op[1] % n:op[1] % n + op[2]]
    elif kind == "random":
        buf = bytearray(op[1])
    elif el is None:
        return buf
    elif kind == "length":
        _put(buf, el.length_at, _length_bytes(el, op[2]))
    elif kind == "swap_lengths":
        other = els[op[2] % len(els)]
        a = buf[el.length_at:el.length_at + el.length_size]
        b = buf[other.length_at:other.length_at + other.length_size]
        _put(buf, el.length_at, (b + b"\0\0")[:el.length_size])
        _put(buf, other.length_at, (a + b"\0\0")[:other.length_size])
    elif kind == "vr" and el.vr_at is not None:
        _put(buf, el.vr_at, op[2][:2].ljust(2, b"\0"))
    elif kind == "value" and el.value_at <= len(buf):
        # the new value replaces the old one and the length field is set to match
        end = min(el.value_at + el.length, len(buf)) if el.length != 0xFFFFFFFF else el.value_at
        value = op[2] + (b"\0" if len(op[2]) % 2 else b"")
        buf[el.value_at:end] = value
        _put(buf, el.length_at, _length_bytes(el, len(value)))
    return buf


def apply_ops(seed: bytes, ops: list[tuple], els: list[Element] | None = None) -> bytes:
    """The seed with the ops applied in order (element ops use the seed's element headers; an op that
    no longer fits after an earlier one does what it can)."""
    els = elements(seed) if els is None else els
    buf = bytearray(seed)
    for op in ops:
        buf = _apply(buf, op, els)
    return bytes(buf)


def random_op(rng: random.Random, seed: bytes, els: list[Element]) -> tuple:
    """One op, positions biased to the header (the first 1,024 bytes hold every tag the reader uses)."""
    head = min(len(seed), 1024)
    pos = rng.randrange(head) if rng.random() < 0.8 else rng.randrange(len(seed) + 1)
    kind = rng.choice(("flip", "flip", "truncate", "insert", "delete", "length", "length", "swap_lengths",
                       "vr", "value", "value"))
    if kind == "flip":
        return ("flip", pos, rng.randrange(1, 256))
    if kind == "truncate":
        return ("truncate", pos)
    if kind == "insert":
        return ("insert", pos, rng.randbytes(rng.choice((1, 2, 4, 8, 12))))
    if kind == "delete":
        return ("delete", pos, rng.choice((1, 2, 4, 8, 12, 100)))
    e = rng.randrange(max(len(els), 1))
    if kind == "length":
        near = els[e].length + rng.randint(-8, 8) if els else 0
        return ("length", e, rng.choice(HUGE_LENGTHS + (rng.randrange(1 << 32), near)))
    if kind == "swap_lengths":
        return ("swap_lengths", e, rng.randrange(max(len(els), 1)))
    if kind == "vr":
        return ("vr", e, rng.choice(VRS))
    return ("value", e, rng.choice(VALUES) if rng.random() < 0.7 else rng.randbytes(rng.randrange(0, 40)))


def random_input(rng: random.Random, seeds: dict[str, bytes], els: dict[str, list[Element]]) -> tuple[str, list]:
    """(seed name, ops) for one fuzz input: 1-4 mutations of a seed, or (5 %) a file of random bytes
    (half of them behind a DICM preamble)."""
    name = rng.choice(sorted(seeds))
    if rng.random() < 0.05:
        body = rng.randbytes(rng.randrange(0, 600))
        return name, [("random", (b"\0" * 128 + b"DICM" + body) if rng.random() < 0.5 else body)]
    return name, [random_op(rng, seeds[name], els[name]) for _ in range(rng.choice((1, 1, 2, 3, 4)))]


def read_untrusted(path: Path) -> str:
    """Run one file through what scan and assembly do with it: the fast parser (on the first 1,024
    bytes; read_header runs it on the whole file), read_header, check_decodable, read_frames. Returns
    "rejected" (NotDicomError), "no pixels" (a documented pixel error) or "read"; any other exception
    propagates: that is a bug."""
    raw = path.read_bytes()              # read_header parses the whole file (< 64 KB); here its start only
    ds = parse(raw[:1024], len(raw))     # None or a dataset, never an exception
    assert ds is None or ds.transfer_syntax, "fast parse returned a dataset without a syntax"
    try:
        head = read_header(str(path))
    except HEADER_ERRORS:
        return "rejected"
    try:
        check_decodable(str(path), head.instances[0].transfer_syntax)
        read_frames(head.instances)
    except PIXEL_ERRORS:
        return "no pixels"
    return "read"


def write(path: Path, data: bytes) -> Path:
    """Overwrite path with data in place (truncating with O_TRUNC costs ~2.5 ms per file on ext4, which
    flushes on truncate-and-rewrite; write + ftruncate costs ~40 us)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    return path


def seed_files(tmp: Path) -> dict[str, bytes]:
    """Small real DICOM files: a phantom `tiny` cine and LGE (uncompressed), a phantom `bench` cine (RLE
    Lossless), and hand-made variants from mr_files (8x8 explicit and implicit VR, Enhanced MR
    multi-frame, a raw data set without preamble, deflated, big endian)."""
    from cmr_search.phantom.generate import generate_study
    out: dict[str, bytes] = {}
    for profile, kinds in (("tiny", ("cine", "lge")), ("bench", ("cine",))):
        rec = generate_study(3, 0, profile, tmp / profile)
        for kind in kinds:
            folder = next(s["folder"] for s in rec["series"] if s["kind"].startswith(kind))
            first = sorted((tmp / profile / rec["folder"] / folder).glob("*.dcm"))[0]
            out[f"{profile}_{kind}"] = first.read_bytes()
    out.update(_hand_made(tmp))
    return out


def _hand_made(tmp: Path) -> dict[str, bytes]:
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian
    from tests.helpers.mr_files import enhanced_mr, mr_dataset
    out = {"small_explicit": _save(mr_dataset(sop=SOP), tmp / "e.dcm")}
    for name, syntax in (("small_implicit", ImplicitVRLittleEndian),
                         ("small_deflated", DeflatedExplicitVRLittleEndian), ("small_big_endian", ExplicitVRBigEndian)):
        ds = mr_dataset(sop=SOP)
        ds.file_meta.TransferSyntaxUID = syntax
        if syntax == ExplicitVRBigEndian:
            ds.PixelData = bytes(reversed(ds.PixelData))      # values do not matter, only the layout
        out[name] = _save(ds, tmp / f"{name}.dcm")
    raw = mr_dataset(sop=SOP)
    del raw.file_meta
    with quiet_pydicom():
        raw.save_as(tmp / "raw.dcm", enforce_file_format=False, implicit_vr=False, little_endian=True)
        out["small_no_preamble"] = (tmp / "raw.dcm").read_bytes()
        enhanced = pydicom.dcmread(enhanced_mr(tmp / "enh.dcm")[0])
    enhanced.SOPInstanceUID = enhanced.file_meta.MediaStorageSOPInstanceUID = SOP     # same bytes every run
    out["enhanced"] = _save(enhanced, tmp / "enh.dcm")
    return out


def _save(ds, path: Path) -> bytes:
    with quiet_pydicom():
        ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()

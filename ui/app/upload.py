"""Query by example: an uploaded zip of one study's DICOM files -> its embedding.

A hostile or broken upload is refused with one line (UploadError), never a traceback or a server path,
and before it costs much (the limits: upload_limits.py; docs/failure.md, "A hostile upload"):
  1. the zip, from its directory alone: size, file count, compression ratio (each file and the whole
     zip), no absolute paths, '..', links, encrypted files, compression other than stored or deflate, two
     files of one name or a name that is both a file and a folder;
  2. unpacking, streamed in chunks inside a fresh temporary folder, each file cut off at the size its
     header gave (a header that lies is refused); a damaged zip (bad CRC, truncated) is refused;
  3. as each file is written, its DICOM header (the files the indexer would parse; pixels are not
     decoded): not deflated, ending within MAX_HEADER_MB; Rows and Columns at most MAX_SIDE, all frames
     of all images together at most MAX_MEGAPIXELS million pixels;
  4. then scanned, typed and assembled by the indexer exactly as `cmr prepare` does, and embedded by the
     index's model (architecture.md §2: indexer.example turns the study into a vector).
The whole runs against one deadline (MAX_SECONDS, checked between steps and files), one upload per
session and MAX_CONCURRENT in the process at a time: a busy workbench says "try again", nothing queues.
Nothing of the upload is kept.
"""
from __future__ import annotations

import contextlib
import io
import lzma
import shutil
import stat
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

import pydicom
from pydicom.filereader import read_dataset, read_preamble
from pydicom.uid import DeflatedExplicitVRLittleEndian

from cmr_search.indexer.dicom_headers import looks_like_dicom, quiet_pydicom

from .upload_limits import (CHUNK, MAX_CONCURRENT, MAX_HEADER_MB, MAX_MEGAPIXELS, MAX_MEMBERS, MAX_RATIO,
                            MAX_SECONDS, MAX_SIDE, MAX_UNPACKED_MB, MAX_UPLOAD_MB, META_KB, RATIO_FLOOR_MB)

# zipfile decompresses deflate a bounded piece at a time, but bzip2 and LZMA a whole read at once: a
# bzip2 member whose header lies about its size could expand to gigabytes in one call
METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
# what zipfile and its decompressors raise on damaged or unusual input (the fuzz test holds this list)
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError, OSError,
              ValueError, NotImplementedError, RuntimeError, struct.error, OverflowError, KeyError,
              IndexError)
AGAIN = "re-create the zip from the study's folder and upload it again."
REEXPORT = "export the study again (uncompressed or JPEG/RLE, classic MR images) and upload that."
PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")     # (7FE0,0010), little and big endian

_slots = threading.BoundedSemaphore(MAX_CONCURRENT)
_busy: set[str] = set()
_busy_lock = threading.Lock()


class UploadError(ValueError):
    """The upload is not a usable study zip; the message says why, for the user."""


class Deadline:
    """MAX_SECONDS from now; check() refuses the upload once they are spent."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = MAX_SECONDS if seconds is None else seconds
        self.end = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() >= self.end:
            raise UploadError(f"processing the upload took longer than {self.seconds:g} s (the limit); "
                              "upload a smaller study, e.g. only its cine and LGE series.")


@contextlib.contextmanager
def upload_slot(owner: str | None = None):
    """Hold one of the MAX_CONCURRENT upload slots, one per owner (a session); refuses, never waits."""
    with _busy_lock:
        if owner is not None and owner in _busy:
            raise UploadError("an upload of this session is still being processed; wait until it is done.")
        if not _slots.acquire(blocking=False):
            raise UploadError("another upload is being processed; try again in a minute.")
        if owner is not None:
            _busy.add(owner)
    try:
        yield
    finally:
        with _busy_lock:
            _busy.discard(owner)
        _slots.release()


def _parts(name: str) -> tuple[str, ...]:
    """A member name -> its path parts below the extraction folder; UploadError for zip-slip names."""
    p = PurePosixPath(name.replace("\\", "/"))
    if not p.parts or p.is_absolute() or ".." in p.parts or ":" in p.parts[0]:
        raise UploadError(f"unsafe path in the zip: {name!r}.")
    return p.parts


def _ratio_too_high(unpacked: int, packed: int) -> bool:
    return unpacked > RATIO_FLOOR_MB * 2**20 and unpacked > MAX_RATIO * max(packed, 1)


def _check_member(m: zipfile.ZipInfo) -> None:
    _parts(m.filename)
    if stat.S_ISLNK(m.external_attr >> 16):
        raise UploadError(f"the zip holds a symbolic link ({m.filename!r}); zip the files themselves.")
    if m.flag_bits & 0x1:
        raise UploadError("the zip is encrypted (password protected); upload an unencrypted zip.")
    if m.compress_type not in METHODS:
        raise UploadError(f"the zip uses compression method {m.compress_type}, which cannot be read here; "
                          "zip the study again with ordinary (deflate) compression.")
    if _ratio_too_high(m.file_size, m.compress_size):
        raise UploadError(f"a file in the zip ({m.filename!r}) unpacks to {m.file_size / 2**20:.0f} MB from "
                          f"{m.compress_size:,} bytes, more than {MAX_RATIO}:1: a zip bomb is refused.")


def _check_names(infos: list[zipfile.ZipInfo]) -> None:
    """No two files of one name, and no name that is both a file and a folder (`a`, then `a/b`)."""
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    for m in infos:
        parts = _parts(m.filename)
        folders.update(parts[:i] for i in range(1, len(parts)))
        if m.is_dir():
            folders.add(parts)
        elif parts in files:
            raise UploadError(f"the zip holds two files named {m.filename!r}; {AGAIN}")
        else:
            files.add(parts)
    if clash := sorted(files & folders):
        raise UploadError(f"the zip holds both a file and a folder named {'/'.join(clash[0])!r}; {AGAIN}")


def check_zip(zf: zipfile.ZipFile, packed: int | None = None) -> list[zipfile.ZipInfo]:
    """The members to extract, from the zip's directory alone; raises UploadError on zip-slip paths,
    links, encryption, unknown methods, name clashes and bombs (`packed`: the zip's size in bytes)."""
    infos = zf.infolist()
    members = [m for m in infos if not m.is_dir()]
    if len(members) > MAX_MEMBERS:
        raise UploadError(f"the zip holds {len(members)} files; at most {MAX_MEMBERS} per study.")
    for m in members:
        _check_member(m)
    _check_names(infos)
    total = sum(m.file_size for m in members)
    if total > MAX_UNPACKED_MB * 2**20:
        raise UploadError(f"the zip unpacks to {total / 2**20:.0f} MB; at most {MAX_UNPACKED_MB} MB.")
    if packed is not None and _ratio_too_high(total, packed):
        raise UploadError(f"the zip unpacks to {total / 2**20:.0f} MB from {packed / 2**20:.1f} MB, more than "
                          f"{MAX_RATIO}:1: a zip bomb is refused.")
    return members


def _as_int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _transfer_syntax(head: bytes) -> str:
    """The Transfer Syntax UID in the file meta of `head` (its first META_KB), read as pydicom reads it
    (preamble optional, group 2 explicit VR little endian); "" when there is none."""
    fp = io.BytesIO(head[:META_KB << 10])
    read_preamble(fp, True)
    meta = read_dataset(fp, is_implicit_VR=False, is_little_endian=True,
                        stop_when=lambda tag, vr, length: tag.group != 2)
    return str(meta.get("TransferSyntaxUID", "") or "")


def _header(path: Path):
    """The header dataset of a file, read from its first MAX_HEADER_MB only (None: not DICOM). Refused:
    a deflated data set (pydicom, and so the indexer, would inflate all of it at once), and a header that
    does not end within MAX_HEADER_MB (parsing costs time and memory by the element)."""
    with open(path, "rb") as f:
        head = f.read(MAX_HEADER_MB << 20)
        more = bool(f.read(1))
    if not looks_like_dicom(head):
        return None
    try:
        syntax = _transfer_syntax(head)
    except Exception:            # hostile bytes where a file meta group starts
        raise UploadError(f"a file's DICOM meta header is unreadable or over {META_KB} kB; {REEXPORT}") from None
    if syntax == DeflatedExplicitVRLittleEndian:
        raise UploadError(f"a file is a deflated DICOM data set, which an upload does not accept; {REEXPORT}")
    fp = io.BytesIO(head)
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    except Exception:            # any parse failure on hostile bytes: the indexer cannot read it either
        ds = None
    if more and (ds is None or fp.read(4) not in PIXEL_DATA_TAGS):
        raise UploadError(f"a file's DICOM header (all before its pixels) is over {MAX_HEADER_MB} MB; "
                          f"{REEXPORT}")
    return ds


def image_size(path: Path) -> tuple[int, int, int] | None:
    """(Rows, Columns, frames) from a file's DICOM header (pixels are not read), or None when the file does
    not read as a DICOM image. pydicom reads it as the indexer's scan does (stop_before_pixels, force,
    quiet_pydicom; the indexer's fast path reads a subset of what pydicom reads), so a file passed over here
    is one the indexer cannot read either."""
    ds = _header(path)
    if ds is None:
        return None
    try:
        rows, cols = _as_int(ds.get("Rows")), _as_int(ds.get("Columns"))
        frames = _as_int(ds.get("NumberOfFrames")) or 1
    except Exception:            # a value that does not convert: the indexer refuses the file too
        return None
    return None if rows is None or cols is None else (rows, cols, max(frames, 1))


class Pixels:
    """The running pixel count of an upload's images, file by file from their headers: each side at most
    MAX_SIDE, all frames of all files together at most MAX_MEGAPIXELS million."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, path: Path) -> None:
        size = image_size(path)
        if size is None:
            return
        rows, cols, frames = size
        if rows > MAX_SIDE or cols > MAX_SIDE:
            raise UploadError(f"an image is {rows} x {cols} pixels; at most {MAX_SIDE} x {MAX_SIDE} "
                              "(Rows x Columns) per image.")
        self.total += rows * cols * frames
        if self.total > MAX_MEGAPIXELS * 10**6:
            raise UploadError(f"the study's images hold more than {MAX_MEGAPIXELS} million pixels (all "
                              "frames together); upload only its cine and LGE series.")


def check_images(root: Path, deadline: Deadline | None = None) -> int:
    """The pixel limits over every file under root, before any pixel is decoded; returns the pixel count."""
    pixels, deadline = Pixels(), deadline or Deadline()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        pixels.add(path)
        deadline.check()
    return pixels.total


class _Budget:
    """A file to write that refuses bytes past `budget` (what the zip's header said the file holds)."""

    def __init__(self, out, budget: int) -> None:
        self.out, self.left = out, budget

    def write(self, b) -> int:
        self.left -= len(b)
        if self.left < 0:
            raise UploadError(f"a file in the zip unpacks to more than its header says: a damaged or "
                              f"hostile zip; {AGAIN}")
        return self.out.write(b)


def _zip_error(e: BaseException) -> UploadError:
    """What went wrong unpacking, in one line without a server path."""
    if isinstance(e, OSError) and e.errno is not None:           # the server's disk, not the zip
        return UploadError(f"the workbench could not store the upload ({e.strerror}); try again later.")
    if isinstance(e, zipfile.BadZipFile):                        # its messages name members, not paths
        return UploadError(f"the zip is damaged ({e}); {AGAIN}")
    return UploadError(f"the zip is damaged or cannot be read ({type(e).__name__}); {AGAIN}")


def _unpack(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], root: Path, deadline: Deadline,
            pixels: Pixels | None) -> int:
    """Stream the checked members into root, each file's header checked once written (`pixels`); a
    DICOMDIR is left out (the walk finds the files, and its references could point outside the folder)."""
    n = 0
    for m in members:
        parts = _parts(m.filename)
        if parts[-1].upper() == "DICOMDIR":
            continue
        target = root.joinpath(*parts)
        if root not in target.resolve().parents:
            raise UploadError(f"unsafe path in the zip: {m.filename!r}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(m) as src, open(target, "xb") as out:
            shutil.copyfileobj(src, _Budget(out, m.file_size), CHUNK)
        if pixels is not None:
            pixels.add(target)
        n += 1
        deadline.check()
    return n


def extract(data: bytes, dest: Path, deadline: Deadline | None = None, pixels: Pixels | None = None) -> int:
    """Extract the zip `data` inside `dest` (checked first; each image's header against `pixels` once
    written); returns the number of files written."""
    deadline = deadline or Deadline()
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise UploadError(f"the upload is {len(data) / 2**20:.0f} MB; at most {MAX_UPLOAD_MB} MB.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS:
        raise UploadError("not a zip file (or a damaged one): zip the study's DICOM folder and upload "
                          "that.") from None
    with zf:
        members = check_zip(zf, len(data))
        try:
            return _unpack(zf, members, dest.resolve(), deadline, pixels)
        except UploadError:
            raise
        except ZIP_ERRORS as e:
            raise _zip_error(e) from None


def _embed(folder: Path, model):
    """The indexer's embed_study on the checked folder; its 'no study here' errors as UploadError."""
    # imported here, not at the top: it brings torch, which the checks (and a refused upload) do not need
    from cmr_search.indexer.query_by_example import ExampleError, embed_study
    try:
        return embed_study(folder, model)
    except ExampleError as exc:
        raise UploadError(str(exc).replace(str(folder), "the zip")) from None


def embed_upload(data: bytes, model, progress: Callable[[str], None] = lambda msg: None,
                 owner: str | None = None):
    """Zip bytes -> (vectors {"study", "cine"[, "lge"]}, qa record, studies found); `owner` (the session)
    may have one upload at a time."""
    deadline = Deadline()
    with upload_slot(owner), tempfile.TemporaryDirectory(prefix="cmr-upload-") as tmp:
        pixels = Pixels()
        n = extract(data, Path(tmp), deadline, pixels)
        progress(f"extracted {n} files ({pixels.total / 1e6:.1f} million pixels); reading, measuring (a model "
                 "with a measure head) and embedding…")
        deadline.check()
        return _embed(Path(tmp), model)

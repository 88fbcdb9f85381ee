"""Query by example: an uploaded zip of one study's DICOM files -> its embedding.

The zip is checked before anything is written (size, member count, no absolute paths, no '..', no
links), extracted only inside a fresh temporary folder, then scanned, typed and assembled by the indexer
exactly as `cmr prepare` does, and embedded by the index's model (architecture.md §2: the indexer turns
the study into a vector and hands search the vector: indexer.example). Nothing of the upload is kept.
"""
from __future__ import annotations

import io
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

MAX_UPLOAD_MB = 200               # compressed; also `cmr ui` sets server.maxUploadSize to this
MAX_UNPACKED_MB = 1_000
MAX_MEMBERS = 20_000


class UploadError(ValueError):
    """The upload is not a usable study zip; the message says why, for the user."""


def check_zip(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The members to extract; raises UploadError on zip-slip paths, links, bombs."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > MAX_MEMBERS:
        raise UploadError(f"the zip holds {len(members)} files; at most {MAX_MEMBERS} per study.")
    total = 0
    for m in members:
        p = PurePosixPath(m.filename.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
            raise UploadError(f"unsafe path in the zip: {m.filename!r}.")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise UploadError(f"the zip holds a symbolic link ({m.filename!r}); zip the files themselves.")
        total += m.file_size
    if total > MAX_UNPACKED_MB * 2**20:
        raise UploadError(f"the zip unpacks to {total / 2**20:.0f} MB; at most {MAX_UNPACKED_MB} MB.")
    return members


def extract(data: bytes, dest: Path) -> int:
    """Extract the zip `data` inside `dest` (checked first); returns the number of files written."""
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise UploadError(f"the upload is {len(data) / 2**20:.0f} MB; at most {MAX_UPLOAD_MB} MB.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UploadError("not a zip file: zip the study's DICOM folder and upload that.") from None
    root = dest.resolve()
    with zf:
        members = check_zip(zf)
        for m in members:
            target = (root / m.filename.replace("\\", "/")).resolve()
            if root not in target.parents:
                raise UploadError(f"unsafe path in the zip: {m.filename!r}.")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(target, "wb") as out:
                out.write(src.read())
    return len(members)


def embed_upload(data: bytes, model, progress: Callable[[str], None] = lambda msg: None):
    """Zip bytes -> (vectors {"study", "cine"[, "lge"]}, qa record, studies found)."""
    # imported here, not at the top: it brings torch, and `cmr ui` reads MAX_UPLOAD_MB from this module
    # before it starts Streamlit (a command that must start fast)
    from cmr_search.indexer.query_by_example import ExampleError, embed_study
    with tempfile.TemporaryDirectory(prefix="cmr-upload-") as tmp:
        n = extract(data, Path(tmp))
        progress(f"extracted {n} files; reading, measuring (a model with a measure head) and embedding…")
        try:
            return embed_study(Path(tmp), model)
        except ExampleError as exc:
            raise UploadError(str(exc).replace(str(Path(tmp)), "the zip")) from None

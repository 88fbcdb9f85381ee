"""Scan an archive folder: find DICOM files, read their headers, group them into studies and series.

    studies, errors = scan_archive("/data/archive", workers=2)

Headers only (no pixels). Grouping is StudyInstanceUID -> SeriesInstanceUID -> InstanceRecord (one per
frame). A DICOMDIR, where present, adds the files it references and is never listed as an image.
Bad input never stops the scan: empty, garbage, truncated and non-image files, DICOM without pixel
data, unreadable folders and duplicate instances each become an ErrorRecord (stage "scan"); instances
with missing or contradictory geometry are kept and reported with a reason starting "kept:".
An archive in which nothing is a DICOM image is the caller's error: `no_studies_message` says what the
folder holds instead ("folder is empty", "12 files, none DICOM: 10 .txt, 2 .png").
"""
from __future__ import annotations

import contextlib
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable

import pydicom

from cmr_search.indexer.dicom_headers import FileHeader, SERIES_FIELDS, STUDY_FIELDS, quiet_pydicom, read_header
from cmr_search.indexer.dicom_io import check_decodable
from cmr_search.indexer.errors import DecoderMissingError, IndexerError, NotDicomError
from cmr_search.indexer.records import ErrorRecord, SeriesRecord, StudyRecord

# Files that sit next to DICOM in archives (ours and others') and are not images: skipped silently.
SIDECAR_SUFFIXES = (".txt", ".json", ".csv", ".parquet", ".md", ".png", ".jpg", ".jpeg", ".gif",
                    ".npz", ".npy", ".xml", ".html", ".htm", ".log", ".pdf", ".py", ".zip", ".gz",
                    ".nii", ".mp4", ".zarr", ".db", ".ini", ".yaml", ".yml")
Progress = Callable[[int, int], None]      # progress(files_done, files_total)
SHOWN_SUFFIXES = 6                          # file kinds named in a "none DICOM" message


class NoStudiesError(IndexerError):
    """The archive folder holds no DICOM study: empty, or nothing in it is a readable DICOM image."""


def _is_candidate(name: str) -> bool:
    low = name.lower()
    return not (name.startswith(".") or low.endswith(SIDECAR_SUFFIXES) or name == "DICOMDIR")


def _walk(root: str, errors: list[ErrorRecord]) -> tuple[list[str], list[str]]:
    """All candidate files and DICOMDIR files under root; unreadable folders -> ErrorRecord."""
    files, dicomdirs, stack = [], [], [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            errors.append(ErrorRecord(folder, "", "scan", f"cannot list folder ({e.strerror or e}); "
                                      "check its permissions (the rest of the archive was scanned)"))
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=True):
                    stack.append(e.path)
                elif e.name == "DICOMDIR":
                    dicomdirs.append(e.path)
                elif e.is_file() and _is_candidate(e.name):
                    files.append(e.path)
            except OSError as err:
                errors.append(ErrorRecord(e.path, "", "scan", f"cannot stat ({err}); skipped"))
    return files, dicomdirs


def _dicomdir_files(path: str, errors: list[ErrorRecord]) -> list[str]:
    """Files referenced by a DICOMDIR (paths relative to its folder)."""
    base, out = os.path.dirname(path), []
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path, force=True)
        for rec in ds.get("DirectoryRecordSequence", []):
            ref = rec.get("ReferencedFileID", None)
            if ref:
                parts = [ref] if isinstance(ref, str) else list(ref)
                out.append(os.path.join(base, *[str(p) for p in parts]))
    except Exception as e:   # a broken DICOMDIR must not stop the scan; the walk still finds files
        errors.append(ErrorRecord(path, "", "scan", f"unreadable DICOMDIR ({type(e).__name__}: "
                                  f"{e}); its folder was scanned without it"))
    return out


def list_files(root: str) -> tuple[list[str], list[ErrorRecord]]:
    """Candidate DICOM files under root (walk + DICOMDIR references, deduplicated), and errors."""
    errors: list[ErrorRecord] = []
    files, dicomdirs = _walk(root, errors)
    if not dicomdirs:
        return files, errors
    seen = {os.path.realpath(f) for f in files}
    for d in dicomdirs:
        for f in _dicomdir_files(d, errors):
            real = os.path.realpath(f)
            if real in seen:
                continue
            if not os.path.isfile(f):
                errors.append(ErrorRecord(f, "", "scan", f"referenced by DICOMDIR {d} but missing; "
                                          "re-copy the media"))
                continue
            seen.add(real)
            files.append(f)
    return files, errors


def _read_one(path: str) -> FileHeader | ErrorRecord:
    try:
        head = read_header(path)
        check_decodable(path, head.instances[0].transfer_syntax)   # pixels must be readable later
        return head
    except DecoderMissingError as e:
        return ErrorRecord(path, "", "scan", str(e))
    except NotDicomError as e:
        return ErrorRecord(path, "", "scan", str(e))
    except OSError as e:
        return ErrorRecord(path, "", "scan", f"cannot read file ({e.strerror or e}); check "
                           "permissions")
    except Exception as e:     # never die on one file: say what happened
        return ErrorRecord(path, "", "scan", f"unexpected error reading header "
                           f"({type(e).__name__}: {e})")


def _read_chunk(paths: list[str]) -> list[FileHeader | ErrorRecord]:
    return [_read_one(p) for p in paths]


def _read_all(files: list[str], workers: int, progress: Progress | None, pool=None) -> Iterable:
    total = len(files)
    if (workers <= 1 and pool is None) or total < 64:
        for i, p in enumerate(files):
            yield _read_one(p)
            if progress:
                progress(i + 1, total)
        return
    size = max(16, min(256, total // (workers * 8)))
    chunks = [files[i:i + size] for i in range(0, total, size)]
    done = 0
    with contextlib.nullcontext(pool) if pool is not None else ProcessPoolExecutor(workers) as ex:
        for results in ex.map(_read_chunk, chunks):
            yield from results
            done += len(results)
            if progress:
                progress(done, total)


def _group(headers: list[FileHeader], errors: list[ErrorRecord]) -> list[StudyRecord]:
    """StudyInstanceUID -> SeriesInstanceUID -> instances; duplicates kept once."""
    studies: dict[str, StudyRecord] = {}
    series: dict[tuple[str, str], SeriesRecord] = {}
    folders: dict[str, list[str]] = {}
    seen: dict[tuple[str, int], str] = {}
    for h in sorted(headers, key=lambda h: h.path):
        first = h.instances[0]
        key = (first.sop_instance_uid, first.frame)
        if key in seen:
            errors.append(ErrorRecord(h.path, h.study_uid, "scan", "duplicate SOPInstanceUID "
                                      f"{first.sop_instance_uid} (also in {seen[key]}, which was "
                                      "kept); remove the copy"))
            continue
        seen[key] = h.path
        for w in h.warnings:
            errors.append(ErrorRecord(h.path, h.study_uid, "scan", f"kept: {w}"))
        if h.study_uid not in studies:
            studies[h.study_uid] = StudyRecord(study_instance_uid=h.study_uid, source_dir="",
                                               **{k: h.study[k] for k in STUDY_FIELDS})
        if (h.study_uid, h.series_uid) not in series:
            s = SeriesRecord(series_instance_uid=h.series_uid, **{k: h.series[k] for k in SERIES_FIELDS})
            series[(h.study_uid, h.series_uid)] = s
            studies[h.study_uid].series.append(s)
        series[(h.study_uid, h.series_uid)].instances.extend(h.instances)
        folders.setdefault(h.study_uid, []).append(os.path.dirname(h.path))
    for uid, st in studies.items():
        st.source_dir = os.path.commonpath(folders[uid])
        st.series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30,
                                      s.series_instance_uid))
        for s in st.series:
            s.instances.sort(key=lambda i: (i.instance_number if i.instance_number is not None
                                            else 1 << 30, i.path, i.frame))
    return sorted(studies.values(), key=lambda s: s.source_dir)


def scan_archive(root, *, workers: int = 1, progress: Progress | None = None, pool=None
                 ) -> tuple[list[StudyRecord], list[ErrorRecord]]:
    """Headers of every DICOM file under root -> (studies, errors). Never raises on bad files.

    workers > 1 reads headers in that many processes; pool: an executor to use for that instead of a
    new one (prepare shares one pool between scan and assembly: workers import everything once).
    progress(done, total) is called as files are read. Studies are sorted by folder, series by
    SeriesNumber, instances by InstanceNumber.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        return [], [ErrorRecord(root, "", "scan", "archive folder does not exist or is not a folder; "
                                "check the path")]
    files, errors = list_files(root)
    headers: list[FileHeader] = []
    for r in _read_all(files, workers, progress, pool):
        (errors.append(r) if isinstance(r, ErrorRecord) else headers.append(r))
    return _group(headers, errors), errors


def has_candidates(root) -> bool:
    """Whether any file under root may be DICOM (stops at the first: cheap on a real archive)."""
    for _, _, names in os.walk(root, followlinks=True):
        if any(_is_candidate(n) for n in names):
            return True
    return False


def file_kinds(root) -> Counter:
    """Files under root (hidden ones included) by lower-case suffix ('no suffix' for none)."""
    kinds: Counter = Counter()
    for _, _, names in os.walk(root, followlinks=True):
        kinds.update(os.path.splitext(n)[1].lower() or "no suffix" for n in names)
    return kinds


def no_studies_message(root, errors: list[ErrorRecord] = ()) -> str:
    """Why an archive gave no study, naming the folder and what it holds (counts by suffix, never file
    names: an archive's paths may hold patient names), and the first reason a file was refused."""
    kinds = file_kinds(root)
    n = sum(kinds.values())
    if not n:
        seen = "folder is empty (no files in it or its subfolders)"
    else:
        common = sorted(kinds.items(), key=lambda kc: (-kc[1], kc[0]))[:SHOWN_SUFFIXES]
        shown = ", ".join(f"{c} {k}" for k, c in common)
        more = ", ..." if len(kinds) > SHOWN_SUFFIXES else ""
        refused = [e for e in errors if not e.reason.startswith("kept:")]
        what = "none a readable DICOM image" if refused else "none DICOM"
        seen = f"{n} files, {what}: {shown}{more}"
        if refused:                           # a reason may name its file (decoder errors): not shown
            reason = refused[0].reason.replace(refused[0].path, "the file") if refused[0].path else refused[0].reason
            seen += f" ({len(refused)} refused, e.g. {reason})"
    return (f"no DICOM study in archive folder {root}: {seen}. Point ARCHIVE at the folder that holds the "
            "DICOM files (subfolders are searched; docs/indexing.md, section Bad input).")

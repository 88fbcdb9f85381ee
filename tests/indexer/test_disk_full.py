"""Disk full while `cmr prepare` writes the study cache (issue 7): a write hook on indexer/cache.py's file
writes lets N more bytes reach the disk and then raises OSError(ENOSPC), as a full disk does part-way
through a file. Expected: exit 1 with one line naming the cache folder and "no space left" and what to do;
nothing half-written left (no temp file, no truncated array, no row without its array); the same command
run again once space is free completes and equals a run that never hit the full disk.
"""
from __future__ import annotations

import errno
import pickle
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import cmr_search.indexer.cache as cache_module
from tests.helpers.dicom_fixtures import write_study
from cmr_search.indexer.errors import DiskFullError
from cmr_search.ui.prepare_cmd import main as prepare_main

N_STUDIES = 4


class FullDisk:
    """Stands in for `open` in indexer/cache.py: records every file written; with a `budget`, the write
    that would pass it gets only the bytes that fit and then raises ENOSPC (so do all later ones)."""

    def __init__(self, budget: int | None = None):
        self.budget, self.written, self.files = budget, 0, []

    def __call__(self, path, mode="r", *args, **kw):
        f = open(path, mode, *args, **kw)
        if "w" not in mode:
            return f
        disk = self
        real_write = f.write

        def write(data):
            room = len(data) if disk.budget is None else max(0, disk.budget - disk.written)
            real_write(data[:room])
            disk.written += min(room, len(data))
            if room < len(data):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            disk.files.append((re.sub(r"^\.(.+)\.\d+\.tmp$", r"\1", Path(path).name), len(data)))
            return len(data)
        f.write = write
        return f


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("diskfull")
    studies = [write_study(root / "arch", f"s{i}", n_slices=5, n_phases=8, heart_slices=(1, 3))
               for i in range(N_STUDIES)]
    pl.DataFrame([{"accession_number": s["acc"], "report": "IMPRESSION: Normal LV."} for s in studies]
                 ).write_csv(root / "reports.csv")
    return root


def _prepare(archive: Path, out: Path, workers: int = 1) -> int:
    return prepare_main([str(archive / "arch"), "--reports", str(archive / "reports.csv"), "--out", str(out),
                         "--salt-file", str(archive / "salt"), "--no-progress", "--workers", str(workers)])


@pytest.fixture(scope="module")
def clean_run(archive):
    """One run on a disk with room: the reference, and the sequence of files it writes."""
    disk = FullDisk()
    mp = pytest.MonkeyPatch()
    mp.setattr(cache_module, "open", disk, raising=False)
    mp.setattr(cache_module, "FLUSH_SECONDS", 1e9)             # parts only at the end: a fixed write order
    try:
        assert _prepare(archive, archive / "clean") == 0
    finally:
        mp.undo()
    return pl.read_parquet(archive / "clean" / "studies.parquet"), disk.files


def _nothing_half_written(out: Path) -> None:
    assert not list(out.rglob("*.tmp")), "a temp file was left behind"
    for npz in (out / "arrays").glob("*.npz"):
        with np.load(npz) as z:
            [z[k] for k in z.files]                              # decodes in full
    for table in [out / "studies.parquet", *(out / "parts").glob("studies-*.parquet")]:
        if table.exists():
            for rel in pl.read_parquet(table)["array_path"]:
                assert (out / rel).is_file(), f"{table.name} references missing {rel}"


def _budget_before(files, which: str) -> int:
    """Bytes written before the first (or last) file named like `which`, plus half of that file."""
    names = [n for n, _ in files]
    i = {"first array": 0, "last array": max(k for k, n in enumerate(names) if n.endswith(".npz"))}.get(which)
    if i is None:
        i = names.index(which)
    return sum(size for _, size in files[:i]) + files[i][1] // 2


@pytest.mark.parametrize("which,workers", [("first array", 2), ("last array", 1), ("studies.parquet", 1)])
def test_disk_full_then_rerun(archive, clean_run, tmp_path, monkeypatch, capsys, which, workers):
    want, files = clean_run
    out = tmp_path / "cache"
    monkeypatch.setattr(cache_module, "open", FullDisk(_budget_before(files, which)), raising=False)
    monkeypatch.setattr(cache_module, "FLUSH_SECONDS", 1e9)
    assert _prepare(archive, out, workers) == 1
    err = capsys.readouterr().err
    assert "no space left" in err and str(out) in err and "run the same command again" in err, err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err, err   # reports line + the error
    _nothing_half_written(out)
    monkeypatch.undo()                                           # space freed
    assert _prepare(archive, out, workers) == 0
    _nothing_half_written(out)
    got = pl.read_parquet(out / "studies.parquet")
    cols = ["study_key", "source_fingerprint", "array_path"]
    assert got.select(cols).sort("study_key").equals(want.select(cols).sort("study_key"))
    assert sorted(p.name for p in (out / "arrays").iterdir()) == sorted(Path(r).name for r in got["array_path"])


def test_disk_full_error_crosses_the_process_pool():
    e = DiskFullError("no space left on the disk of /x/arrays")
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is DiskFullError and str(again) == str(e)

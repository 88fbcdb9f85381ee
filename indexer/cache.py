"""The study cache on disk: written incrementally, crash-safe, and skipping unchanged studies on re-runs.

    out/studies.parquet     one row per study (keys only, never raw identifiers)
    out/arrays/<key>.npz    the study's views (a compressed .npz, float16; np.load reads it)
    out/masks/<key>.npz     the study's display masks (uint8 `masks`, `frames`; indexer/measurements.py)
    out/errors.parquet      file, study, stage, reason (this run's errors)
    out/link.parquet        study_key, patient_key, study_instance_uid, accession_number, source_path
    out/parts/              small Parquet part files appended while a run goes; merged by `finish`

Every file appears atomically (written to a temp name, then os.replace), readable by its owner only: a new
file 0600, a new folder 0700, whatever the umask (search/private_files.py; docs/privacy.md, "File modes":
the tables hold keys, link.parquet raw identifiers). A study's arrays are written
before its row, so after a kill -9 a row always has its arrays; rows still in memory are lost and redone
by the next run, which skips studies whose `source_fingerprint` is unchanged. Temp files of a killed run
are removed by the next one. A full disk (ENOSPC) stops the run with DiskFullError naming the folder; the
half-written temp file is removed, so nothing partial ever looks valid (docs/failure.md).
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import polars as pl

from cmr_search.indexer.errors import DiskFullError
from cmr_search.indexer.records import ErrorRecord
from cmr_search.model.atomic import stale_temps
from cmr_search.model.cache_folder import CacheFolder
from cmr_search.search.private_files import private_dir, write_private

LINK_COLUMNS = ("study_key", "patient_key", "study_instance_uid", "accession_number", "source_path")
FLUSH_SECONDS = 1.0       # part files are written at least this often while studies complete
FLUSH_ROWS = 64
NPZ_LEVEL = 1             # deflate level of the arrays: 1 is ~3x faster than savez's 6, files ~10 % larger


def fingerprint(files: list[tuple[str, int, int]], extra: str = "") -> str:
    """Hash of (path, size, mtime_ns) of a study's source files plus `extra` (e.g. its report text)."""
    h = hashlib.sha256()
    for path, size, mtime in sorted(files):
        h.update(f"{path}\0{size}\0{mtime}\n".encode())
    h.update(extra.encode())
    return h.hexdigest()[:24]


def _write_bytes(data: bytes):
    """A writer for atomic_write that goes through this module's `open` (tests hook it: test_disk_full)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
    return write


def write_atomic(path: Path, data: bytes) -> None:
    """search.private_files.write_private (model.atomic.atomic_write: temp file .NAME.PID.tmp beside `path`,
    fsync, rename, the temp file removed on any failure; a new file 0600), with no space left (ENOSPC,
    EDQUOT) raised as DiskFullError."""
    try:
        write_private(path, _write_bytes(data))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"no space left on the disk of {path.parent} (writing {path.name}): free some "
                                "space, or give another folder (--out / --data), then run the same command "
                                "again; what was cached before is kept and skipped.") from None
        raise


def remove_stale_temps(folder: Path) -> int:
    """Delete temp files that a killed process left in `folder` (its pid is gone); returns how many."""
    stale = stale_temps(folder)
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> None:
    buf = io.BytesIO()
    df.write_parquet(buf)
    write_atomic(path, buf.getvalue())


def write_arrays(out: str | Path, key: str, views: dict[str, np.ndarray]) -> str:
    """Write one study's views to out/arrays/<key>.npz atomically; returns the path relative to out."""
    rel = f"arrays/{key}.npz"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=NPZ_LEVEL) as z:   # = savez_compressed
        for v, a in views.items():                                                   # at a faster level
            with z.open(f"{v}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(a, np.float16), allow_pickle=False)
    write_atomic(Path(out) / rel, buf.getvalue())
    return rel


def write_masks(out: str | Path, key: str, masks: np.ndarray, frames: list[int]) -> str:
    """Write one study's display masks (uint8 labels on the cached cine_sax grid, and the cine_sax frames
    they belong to) to out/masks/<key>.npz atomically; returns the path relative to out."""
    rel = f"masks/{key}.npz"
    private_dir(Path(out) / "masks")
    buf = io.BytesIO()
    np.savez_compressed(buf, masks=np.asarray(masks, np.uint8), frames=np.asarray(frames, np.int16))
    write_atomic(Path(out) / rel, buf.getvalue())
    return rel


def load_masks(out: str | Path, rel_path: str) -> tuple[np.ndarray, list[int]]:
    """(masks (K, H, W) uint8, cine_sax frame of each) of one measured study (as written by write_masks)."""
    with np.load(Path(out) / rel_path) as z:
        return z["masks"], [int(f) for f in z["frames"]]


def load_arrays(out: str | Path, rel_path: str) -> dict[str, np.ndarray]:
    """The views of one cached study (as written by write_arrays)."""
    with np.load(Path(out) / rel_path) as z:
        return {k: z[k] for k in z.files}


def _read_tables(paths: list[Path]) -> pl.DataFrame | None:
    frames = [pl.read_parquet(p) for p in paths if p.exists()]
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


class CacheWriter:
    """Appends studies, links and errors to a cache folder during one run; `finish` merges the parts."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.folder = CacheFolder(self.out)
        for sub in (self.folder.arrays, self.folder.masks, self.folder.parts):
            private_dir(sub)                                 # and `out` (and DATA above it) when new
            remove_stale_temps(sub)
        remove_stale_temps(self.out)
        for old in self.folder.parts.glob("errors-*.parquet"):
            old.unlink()                                     # errors describe the latest run only
        self.rows: list[dict] = []
        self.links: list[dict] = []
        self.errors: list[ErrorRecord] = []
        self.last_flush = time.monotonic()
        self.n_parts = len(list(self.folder.parts.glob("*.parquet")))

    def done(self) -> dict[str, str]:
        """study_key -> source_fingerprint of studies already cached whose arrays exist."""
        df = _read_tables([self.folder.studies_table, *sorted(self.folder.parts.glob("studies-*.parquet"))])
        if df is None:
            return {}
        return {k: fp for k, fp, rel in df.select("study_key", "source_fingerprint", "array_path").iter_rows()
                if (self.out / rel).exists()}

    def cached_rows(self) -> dict[str, dict]:
        """study_key -> its latest studies row (the table and this run's parts), for studies whose arrays
        exist (e.g. to add measurements to them without rebuilding their arrays)."""
        df = _read_tables([self.folder.studies_table, *sorted(self.folder.parts.glob("studies-*.parquet"))])
        if df is None:
            return {}
        df = df.unique("study_key", keep="last", maintain_order=True)
        return {r["study_key"]: r for r in df.iter_rows(named=True) if (self.out / r["array_path"]).exists()}

    def add_study(self, row: dict, link: dict) -> None:
        self.rows.append(row)
        self.links.append(link)
        self.maybe_flush()

    def add_errors(self, errors: list[ErrorRecord]) -> None:
        self.errors.extend(errors)
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if len(self.rows) >= FLUSH_ROWS or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def _part(self, kind: str) -> Path:
        self.n_parts += 1
        return self.folder.parts / f"{kind}-{time.time_ns()}-{os.getpid()}-{self.n_parts:06d}.parquet"

    def flush(self) -> None:
        """Write what is buffered as new part files (links before studies, so a row always has a link)."""
        if self.rows:
            write_parquet_atomic(pl.DataFrame(self.links, schema={c: pl.Utf8 for c in LINK_COLUMNS}), self._part("link"))
            write_parquet_atomic(pl.DataFrame(self.rows, infer_schema_length=None), self._part("studies"))
            self.rows, self.links = [], []
        if self.errors:
            write_parquet_atomic(pl.DataFrame([e.__dict__ for e in self.errors],
                                         schema={"path": pl.Utf8, "study": pl.Utf8, "stage": pl.Utf8,
                                                 "reason": pl.Utf8}), self._part("errors"))
            self.errors = []
        self.last_flush = time.monotonic()

    def _merge(self, kind: str, final: Path, keep_keys: set[str] | None) -> pl.DataFrame | None:
        parts = sorted(self.folder.parts.glob(f"{kind}-*.parquet"))
        df = _read_tables([final, *parts])
        if df is not None and "study_key" in df.columns:
            df = df.unique("study_key", keep="last", maintain_order=True)
            if keep_keys is not None:
                df = df.filter(pl.col("study_key").is_in(sorted(keep_keys)))
        return df, parts

    def finish(self, keep_keys: set[str] | None = None) -> pl.DataFrame:
        """Merge part files into studies.parquet, link.parquet and errors.parquet; drop studies not in
        keep_keys (gone from the archive) with their arrays. Returns the studies table."""
        self.flush()
        for sub in (self.folder.arrays, self.folder.masks, self.folder.parts):   # a killed run's writers are gone
            remove_stale_temps(sub)
        errors_schema = {"file": pl.Utf8, "study": pl.Utf8, "stage": pl.Utf8, "reason": pl.Utf8}
        studies, s_parts = self._merge("studies", self.folder.studies_table, keep_keys)
        links, l_parts = self._merge("link", self.folder.link_table, keep_keys)
        errors = _read_tables(sorted(self.folder.parts.glob("errors-*.parquet")))
        errors = errors.rename({"path": "file"}) if errors is not None else pl.DataFrame(schema=errors_schema)
        studies = studies if studies is not None else pl.DataFrame({"study_key": []}, schema={"study_key": pl.Utf8})
        write_parquet_atomic(studies, self.folder.studies_table)
        write_parquet_atomic(links if links is not None else pl.DataFrame(schema={c: pl.Utf8 for c in LINK_COLUMNS}),
                        self.folder.link_table)
        write_parquet_atomic(errors, self.folder.errors_table)
        for p in self.folder.parts.glob("*.parquet"):
            p.unlink()
        if keep_keys is not None:
            for npz in [*self.folder.arrays.glob("*.npz"), *self.folder.masks.glob("*.npz")]:
                if npz.stem not in keep_keys:
                    npz.unlink()
        return studies

"""Private files and folders (docs/privacy.md, "File modes"): what holds identifiers or keys (link tables,
the study cache's tables, cohort exports and saved cohorts) is readable by its owner only, whatever the
umask.

    private_dir(DataFolder(root).exports)                # a NEW folder (and new parents) 0700
    write_private(path, b"...")                           # atomically, a new file 0600
    write_private(path, lambda p: frame.write_parquet(p)) # or through a writer given the temp path

A folder that exists already is left as it is (one the user chose, or a data folder a team shares and
chmod'ed); a file replaced keeps the mode the old one had (a team may chmod 640 it), a new one is 0600.
The mode is set on the temp file before any byte is written and again before the rename, so no reader
ever sees the content with a wider mode; mkdir's and open's modes alone would be masked by the umask.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from cmr_search.model.atomic import atomic_write

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | Path) -> Path:
    """Create `path` and any missing parents with mode 0700 (set explicitly: mkdir's mode is masked by the
    umask); folders that already exist keep their mode. Returns `path`."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:                     # made by another process meanwhile: theirs, its mode
            continue
        os.chmod(d, DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def file_mode(path: Path) -> int:
    """The mode a private write gives `path`: the mode of the file it replaces, else 0600."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return FILE_MODE


def write_private(path: str | Path, content: bytes | str | Callable[[Path], None], *,
                  fsync: bool = True) -> Path:
    """model.atomic.atomic_write with the file's mode set (file_mode) before its content is written.
    `content`: bytes, text (UTF-8), or a function writing the file at the temp path it is given (it must
    open that path for writing, which keeps the mode, not replace it). Returns `path`."""
    path = Path(path)
    mode = file_mode(path)

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)                     # a leftover temp file kept its own mode
            if not callable(content):
                f.write(content.encode() if isinstance(content, str) else content)
        if callable(content):
            content(tmp)
            os.chmod(tmp, mode)

    return atomic_write(path, write, fsync=fsync)

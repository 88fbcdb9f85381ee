"""Atomic file writes: the one helper every room uses (checkpoints, training state, the study cache, the
embedded index's bookkeeping, the workbench's media cache).

The content goes to a temp file beside the target (`.NAME.PID.tmp`, so a later run can tell a dead
writer's leftovers by the PID: `stale_temps`), is flushed and fsynced, then renamed over the target. A
reader sees the old file or the new one, never half of one; on any failure the temp file is removed and
the error goes up unchanged (callers that know better, e.g. the cache on a full disk, translate it).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

TEMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp$")      # .NAME.PID.tmp


def temp_path(path: Path) -> Path:
    """The temp file this process writes before renaming it to `path`."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: str | Path, content: bytes | str | Callable[[Path], None], *, fsync: bool = True) -> Path:
    """Write `content` (bytes, text, or a function that writes the file at the path it is given, e.g.
    `lambda p: torch.save(obj, p)`) to `path` atomically; returns `path`."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        if callable(content):
            content(tmp)
        else:
            tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def stale_temps(folder: Path) -> list[Path]:
    """Temp files in `folder` whose writer (by PID) is no longer running."""
    out = []
    for f in folder.glob(".*.tmp") if folder.is_dir() else ():
        m = TEMP_NAME.match(f.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            out.append(f)
    return out


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this PID is running (lock files and temp names carry their writer's PID). A
    zombie (killed, not yet reaped by its parent) counts as gone: it can never finish a write."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Linux: the process state in /proc/PID/stat is Z (zombie) or X (dead); elsewhere False."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] in ("Z", "X")

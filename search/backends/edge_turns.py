"""Several processes on one embedded index (issue #19): readers never wait for each other, one writer at a
time, and a writer and the readers take turns with a message instead of an error.

Qdrant Edge locks the write-ahead log of an open shard (flock, exclusive, on DATA/index/cmr_studies/wal):
a second `EdgeShard.load` of that folder fails with WouldBlock, in another process and in the same one,
and a load writes to the shard's files (flags, trackers, segment.json) even when nothing is changed. So
the shard folder itself has one user at a time; what is shared is a turn lock beside it:

    DATA/index/cmr_studies.turns      flock: shared while a reader copies the shard, exclusive while a
                                      writer has it open (never deleted: a flock lives on the file)
    DATA/index/cmr_studies.lock       {"pid", "started", "cmd"} of the writer that has it, for messages
    DATA/index/.readers/cmr_studies.PID.N/    one reading process's private copy of the shard

A reader copies the shard under the shared lock, lets go, and searches its copy for as long as it likes;
when the index's check file changes (a writer finished) it copies again at its next read. A writer waits
for copies in progress and for another writer, saying who it waits for; after CMR_INDEX_WAIT seconds
(default WAIT_S) it gives up with IndexBusyError naming the holder.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from cmr_search.model.atomic import atomic_write, pid_alive

from ..errors import IndexLockedError, IndexMissingError, SearchError

WAIT_ENV = "CMR_INDEX_WAIT"
WAIT_S = 600.0             # how long a writer (or a reader with no copy yet) waits for its turn
POLL_S = 0.05
SAY_EVERY_S = 60.0         # the wait message again, while the wait goes on
READERS = ".readers"       # DATA/index/.readers: the reading processes' copies
WRITE_IDLE_S = 5.0         # a reader that wrote gives its writer's turn back after this long without writes


class IndexBusyError(IndexLockedError):
    """The turn did not come within the wait: names the holder and the ways out."""

    def __init__(self, path: str, holder: dict, waited: float, same_process: bool = False):
        pid = holder.get("pid")
        who = (f"PID {pid} (started {holder.get('started')}, {holder.get('cmd') or 'a process'})" if pid
               else "processes reading it (copying the index)")
        if same_process:
            why = ("this process already has it open for writing: use that Store (or close it first)")
        else:
            why = (f"waited {waited:.0f} s for it. The embedded index takes one writer at a time (readers "
                   f"do not wait for each other): let it finish or stop it, set {WAIT_ENV}=SECONDS to wait "
                   "longer, or run a Qdrant server (`docker compose up -d`, then set QDRANT_URL) for several "
                   "writers")
        SearchError.__init__(self, f"index is locked by {who} at {path}: {why}.")
        self.pid = pid


class IndexCopyError(SearchError):
    """A reader's copy of the index could not be made (e.g. the disk is full)."""


def wait_limit() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, WAIT_S)))
    except ValueError:
        return WAIT_S


def command_name(argv: list[str] | None = None) -> str:
    """What this process is, for the other side's wait message: 'cmr index', 'cmr ui', 'python x.py'."""
    argv = sys.argv if argv is None else argv
    if any("streamlit" in a for a in argv[:2]):
        return "cmr ui"
    head = Path(argv[0]).name if argv and argv[0] else "python"
    if head == "cmr" or head.endswith("cli.py"):
        return "cmr " + next((a for a in argv[1:] if not a.startswith("-")), "")
    return "python" if head in ("", "-c", "-") else f"python {head}"


class Turns:
    """The turn lock of one collection: `shared()` while copying, `exclusive()` while writing."""

    def __init__(self, index_dir: Path, collection: str):
        self.file = index_dir / f"{collection}.turns"
        self.holder_file = index_dir / f"{collection}.lock"
        self.where = str(index_dir / collection)
        self._fd: int | None = None
        self.mode: str | None = None          # None | "shared" | "exclusive"

    def _try(self, op: int) -> bool:
        if self._fd is None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, op | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def try_shared(self) -> bool:
        """Take the shared turn now if no writer has it (a reader refreshing its copy never waits)."""
        if self._try(fcntl.LOCK_SH):
            self.mode = "shared"
            return True
        return False

    def shared(self) -> None:
        self._wait(fcntl.LOCK_SH, "read")
        self.mode = "shared"

    def exclusive(self) -> None:
        self._wait(fcntl.LOCK_EX, "write")
        self.mode = "exclusive"
        now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        # no fsync: the file names a live process; after a crash the flock is gone whatever the disk kept
        atomic_write(self.holder_file, json.dumps({"pid": os.getpid(), "started": now, "cmd": command_name()}),
                     fsync=False)

    def release(self) -> None:
        if self.mode == "exclusive" and self.holder().get("pid") == os.getpid():
            self.holder_file.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)                # closing the descriptor drops the flock
        self._fd, self.mode = None, None

    def holder(self) -> dict:
        """The writer that has (or last had) the index, from the holder file ({} when none)."""
        try:
            d = json.loads(self.holder_file.read_text())
            return {"pid": int(d["pid"]), "started": str(d["started"]), "cmd": str(d.get("cmd", ""))}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _wait(self, op: int, want: str) -> None:
        if self._try(op):
            return
        if self._live_holder().get("pid") == os.getpid():
            self.release()
            raise IndexBusyError(self.where, self._live_holder(), 0.0, same_process=True)
        limit, t0, said = wait_limit(), time.monotonic(), -SAY_EVERY_S
        while True:
            waited = time.monotonic() - t0
            if waited - said >= SAY_EVERY_S:
                said = waited
                _say(self._waiting(self._live_holder(), want, limit))
            time.sleep(POLL_S)
            if self._try(op):
                _say(f"{self.where} is free after {time.monotonic() - t0:.0f} s; going on.")
                return
            if waited > limit:
                self.release()
                raise IndexBusyError(self.where, self._live_holder(), waited)

    def _live_holder(self) -> dict:
        """The writer that has the index, or {} (none alive: readers are copying it)."""
        holder = self.holder()
        return holder if holder.get("pid") and pid_alive(holder["pid"]) else {}

    def _waiting(self, holder: dict, want: str, limit: float) -> str:
        wants = f"this process waits to {'read' if want == 'read' else 'write to'} it, up to {limit:.0f} s: {WAIT_ENV}"
        if holder:
            who = f"PID {holder['pid']} ({holder.get('cmd') or 'a process'})"
            return f"waiting for {who} to release {self.where} (one writer at a time; {wants}) ..."
        return f"waiting for other processes to finish copying {self.where} ({wants}) ..."


def _say(text: str) -> None:
    print(f"cmr-search: {text}", file=sys.stderr, flush=True)


# ---- the readers' copies ------------------------------------------------------------------------------
_seq = iter(range(1, 1 << 62))
_seq_lock = threading.Lock()


def copy_shard(shard: Path, collection: str) -> Path:
    """Copy the shard folder to DATA/index/.readers/COLLECTION.PID.N (the caller holds the shared turn);
    leftovers of dead readers are removed first. A failed copy leaves nothing and says how to recover."""
    readers = shard.parent / READERS
    remove_stale(readers, collection)
    with _seq_lock:
        n = next(_seq)
    dest = readers / f"{collection}.{os.getpid()}.{n}"
    try:
        readers.mkdir(parents=True, exist_ok=True)
        shutil.copytree(shard, dest, copy_function=copy_sparse)
    except OSError as e:
        shutil.rmtree(dest, ignore_errors=True)
        size = sum(f.stat().st_size for f in shard.rglob("*") if f.is_file()) / 2**20
        raise IndexCopyError(f"cannot copy the index {shard} ({size:.0f} MiB) for this reading process into "
                             f"{readers}: {e.strerror or e}. Each process that searches the embedded index "
                             "reads its own copy: free that much disk, or run a Qdrant server "
                             "(`docker compose up -d`, then set QDRANT_URL).") from None
    return dest


def copy_sparse(src, dst) -> None:
    """Copy a file's data extents only: the engine's mmap files are mostly holes (an index of 10,000
    studies: 546 MiB long, 155 MiB on disk), which a plain copy would fill with zeros."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        i, o = fi.fileno(), fo.fileno()
        size, pos = os.fstat(i).st_size, 0
        try:
            while pos < size:
                start = os.lseek(i, pos, os.SEEK_DATA)
                pos = os.lseek(i, start, os.SEEK_HOLE)
                _copy_range(i, o, start, pos - start)
        except OSError as e:
            if e.errno == errno.ENXIO:              # no data after pos: the rest is a hole
                pass
            elif e.errno in (errno.EINVAL, errno.EOPNOTSUPP) and pos == 0:   # no SEEK_DATA here
                _copy_range(i, o, 0, size)
            else:
                raise
        fo.truncate(size)


def _copy_range(i: int, o: int, start: int, n: int) -> None:
    end = start + n
    while start < end:
        try:
            done = os.copy_file_range(i, o, end - start, start, start)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            done = os.pwrite(o, os.pread(i, min(end - start, 1 << 24), start), start)
        if done == 0:                               # the file shrank under us: not under a turn
            raise OSError(errno.EIO, "short copy")
        start += done


def remove_copy(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale(readers: Path, collection: str) -> None:
    for old in readers.glob(f"{collection}.*.*") if readers.is_dir() else ():
        parts = old.name[len(collection) + 1:].split(".")
        if parts[0].isdigit() and int(parts[0]) != os.getpid() and not pid_alive(int(parts[0])):
            shutil.rmtree(old, ignore_errors=True)


def signature(path: Path):
    """What changes whenever a writer opens or closes the index (its check file is replaced then)."""
    try:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns, st.st_size
    except OSError:
        return None


class TakesTurns:
    """How EdgeBackend shares its shard handle between threads and takes turns between processes: every
    call goes through `_use`, which first makes sure of the handle it needs (a fresh copy to read, the
    shard itself to write), and swaps it only when no thread is using the old one. The backend provides
    _take_turn, _give_back, _open_copy, _reading and the attributes set in its __init__."""

    def _swap(self, shard, copy, seen, writing: bool):
        """Put a new handle in place once no thread uses the old one; returns the old (shard, copy)."""
        self._handle.acquire_swap()
        try:
            old = (self.shard, self._copy)
            self.shard, self._copy, self._seen, self.writing = shard, copy, seen, writing
            return old
        finally:
            self._handle.release_swap()

    def _prepare(self, write: bool) -> None:
        if write:
            if not self.writing:
                with self._mode:
                    if not self.writing:
                        self._take_turn()
                        self._last_write = time.monotonic()
                        if not self._stay:
                            threading.Thread(target=self._watch_idle, daemon=True).start()
            return
        if self.writing:
            return
        if self.shard is None:
            with self._mode:
                if self.shard is None and not self.writing:
                    self._open_copy(wait=True)
        elif signature(self.check_path) != self._seen and self._mode.acquire(blocking=False):
            try:                                    # a writer changed it: copy again unless one is at it now
                if not self.writing and self.shard is not None:
                    self._open_copy(wait=False)
            finally:
                self._mode.release()

    @contextlib.contextmanager
    def _use(self, write: bool = False):
        """The current shard handle for one call: a fresh copy to read, the shard itself to write."""
        while True:
            self._prepare(write)
            self._handle.acquire_use()
            if self.shard is not None and (self.writing or not write):
                break
            self._handle.release_use()
            if self.writing and self.shard is None:
                raise IndexMissingError(f"{self.where} (collection {self.collection!r})")
        try:
            if write:
                self._last_write = time.monotonic()
            with contextlib.nullcontext() if write else self._reading():
                yield self.shard
        finally:
            self._handle.release_use()

    def _watch_idle(self) -> None:
        """A reader that wrote: give the turn back once it has not written for WRITE_IDLE_S."""
        while True:
            time.sleep(WRITE_IDLE_S / 4)
            with self._mode:
                if not self.writing or self._stay:
                    return
                if time.monotonic() - self._last_write >= WRITE_IDLE_S:
                    self._give_back()
                    return


class HandleLock:
    """Threads of one process share a backend: any number use the current shard handle at once
    (`use`), a swap of the handle (copy refreshed, turn to write taken or given back) waits for them."""

    def __init__(self):
        self._cond = threading.Condition()
        self._users = 0
        self._swapping = False

    def acquire_use(self) -> None:
        with self._cond:
            while self._swapping:
                self._cond.wait()
            self._users += 1

    def release_use(self) -> None:
        with self._cond:
            self._users -= 1
            self._cond.notify_all()

    def acquire_swap(self) -> None:
        with self._cond:
            while self._swapping or self._users:
                self._cond.wait()
            self._swapping = True

    def release_swap(self) -> None:
        with self._cond:
            self._swapping = False
            self._cond.notify_all()

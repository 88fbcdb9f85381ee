"""Embedded backend: `qdrant-edge-py`, Qdrant's engine in-process, one shard folder per collection.

    DATA/index/cmr_studies/        the shard (edge_config.json, segments/, wal/)
    DATA/index/cmr_studies.check   {"points": n, "clean": bool, "files": {...}}: what the last writer left
    DATA/index/cmr_studies.turns   the turn lock; .lock: the writer that has it; .readers/: readers' copies

Several processes (edge_turns.py): Edge locks an open shard's WAL, so the shard folder has one user at a
time, a writer. A reading process (`Store.open` without `dim`: the UI, a notebook, `cmr search`) searches a
private copy made under a shared turn lock, and copies again at its next read after a writer finished.
A writer (`Store.open(dim=...)`: `cmr index`; or a reader's first write: `label` writing) waits for its
turn, saying for whom, and holds the shard; a reader that wrote gives its turn back at `flush`, or after
WRITE_IDLE_S without writes. Cost: no extra time per query (one stat of the check file); a copy and a
load when a reader opens and after each writer, and the copy's disk (docs/scale.md).

Damage is an error, never a silent short result (docs/failure.md): a new shard is built in a temp folder
and renamed into place; a writer's close records the point count and a fingerprint of every shard file
(size and blake2b of a few sampled blocks), and the next open (or copy) compares them first; every open
checks that no point the last flush counted is gone; a read the engine cannot complete becomes
IndexCorruptError. Each names the folder and the rebuild command (`cmr index --data DATA --rebuild`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Iterator

import qdrant_edge as qe

from cmr_search.model.atomic import atomic_write, pid_alive

from ..errors import IndexCorruptError, IndexMissingError
from ..filters import Conditions
from .base import RRF_K, Backend, Hit
from .edge_convert import _SCHEMA, _config, _filter, _hit, _payload_sel, _to_edge
from .edge_turns import HandleLock, IndexBusyError, TakesTurns, Turns, copy_shard, remove_copy, signature

SAMPLE_BLOCKS = 4          # blocks of each shard file hashed into the close-time fingerprint
SAMPLE_BYTES = 4096
_DAMAGE = re.compile(r"Service runtime error|IO Error|Gridstore|decompress|not readable", re.I)


class EdgeBackend(TakesTurns, Backend):
    name = "embedded"

    def __init__(self, index_dir: str | Path, collection: str, write: bool = True, load: bool = True):
        """write: take the writer's turn now and keep it until close (else: read from a copy, and take the
        turn at the first write); load: open an existing shard (False: only the turn, e.g. to drop it)."""
        self.dir = Path(index_dir)
        self.path = self.dir / collection
        self.collection = collection
        self.check_path = self.dir / f"{collection}.check"
        self.where = str(self.path)
        self.shard = None
        self.writing = False              # this backend has the writer's turn and the shard itself open
        self._stay = write                # opened to write: keeps the turn until close
        self.turns = Turns(self.dir, collection)
        self._copy: Path | None = None    # reader: its copy of the shard, made when the check file was _seen
        self._seen = None
        self._handle = HandleLock()
        self._mode = threading.RLock()    # one change of mode (copy, refresh, turn taken / given back) at a time
        self._check_lock = threading.RLock()       # threads share a backend: one check-file write at a time
        self._last_write = 0.0
        if write:
            self._take_turn(load)
        elif load and self._exists():
            self._open_copy(wait=True)

    def _exists(self) -> bool:
        return (self.path / "edge_config.json").exists()

    # ---- the writer's turn: the shard itself --------------------------------------------------------
    def _take_turn(self, load: bool = True) -> None:
        """Wait for the writer's turn (a reader goes on searching its copy meanwhile), open the shard."""
        self.turns.exclusive()
        try:
            _remove_stale_creating(self.path)
            shard = self._open_checked() if load and self._exists() else None
        except BaseException:
            self.turns.release()
            raise
        old, old_copy = self._swap(shard, None, None, writing=True)
        if old is not None:
            old.close()
        remove_copy(old_copy)

    def _open_checked(self):
        """Load the shard after the damage checks; leave an 'open, not clean' check file behind."""
        check = self._read_check()
        if check.get("clean"):
            self._verify_files(self.path, check.get("files") or {})
        shard = self._load(self.path)
        try:
            self._write_check(self._counted(shard, check), clean=False)
        except BaseException:
            shard.close()
            raise
        return shard

    def _give_back(self) -> None:
        """Close the shard as clean (count and fingerprints in the check file) and release the turn."""
        shard = self._swap(None, None, None, writing=False)[0]
        try:
            self._close_clean(shard)
        finally:
            self.turns.release()

    def _close_clean(self, shard) -> None:
        if shard is None:
            return
        try:
            shard.flush()
            n = self._count_all(shard)
        except Exception:                           # damaged: close without vouching for it
            n = None
        shard.close()
        if n is not None:
            try:
                self._write_check(n, clean=True)
            except OSError:                         # e.g. disk full: the 'open, not clean' mark stays
                pass

    # ---- a reader's copy --------------------------------------------------------------------------
    def _open_copy(self, wait: bool) -> bool:
        """Copy the shard under the shared turn, load the copy; wait: for a writer to finish (else give
        up at once and keep the current copy). Returns whether a new copy is in use."""
        if not wait and not self.turns.try_shared():
            return False
        if wait:
            self.turns.shared()
        try:
            _remove_stale_creating(self.path)
            if not self._exists():
                if not wait:
                    return False
                raise IndexMissingError(f"{self.where} (collection {self.collection!r})")
            check = self._read_check()
            if check.get("clean"):
                self._verify_files(self.path, check.get("files") or {})
            seen = signature(self.check_path)
            copy = copy_shard(self.path, self.collection)
        finally:
            self.turns.release()
        try:
            shard = self._load(copy)
            try:
                self._counted(shard, check)
            except BaseException:
                shard.close()
                raise
        except BaseException:
            remove_copy(copy)
            raise
        old, old_copy = self._swap(shard, copy, seen, writing=False)
        if old is not None:
            old.close()
        remove_copy(old_copy)
        return True

    # ---- damage checks ------------------------------------------------------------------------------
    def _damaged(self, reason: str) -> IndexCorruptError:
        return IndexCorruptError(f"the embedded index at {self.where}", reason, str(self.dir.parent))

    def _load(self, path: Path):
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as e:                      # Edge raises plain Exception
            if "WouldBlock" in str(e):              # under our turn: a process that does not take turns
                raise IndexBusyError(self.where, self.turns.holder(), 0.0) from None
            raise self._damaged(f"the engine cannot load it: {_short(e)}") from None

    def _counted(self, shard, check: dict) -> int:
        n = self._count_all(shard)
        if n < int(check.get("points", 0)):
            raise self._damaged(f"{check['points']} points were stored, only {n} can be read")
        return n

    def _read_check(self) -> dict:
        if not self.check_path.exists():
            return {}                               # an index from before check files: nothing to compare
        try:
            check = json.loads(self.check_path.read_text())
            int(check.get("points", 0))
            return check
        except (OSError, ValueError, TypeError, AttributeError):
            raise self._damaged(f"its check file {self.check_path.name} is unreadable") from None

    def _write_check(self, points: int, clean: bool) -> None:
        check = {"points": int(points), "clean": clean}
        if clean:
            check["files"] = {str(f.relative_to(self.path)): _fingerprint(f)
                              for f in sorted(self.path.rglob("*")) if f.is_file()}
        with self._check_lock:
            atomic_write(self.check_path, json.dumps(check))

    def _verify_files(self, root: Path, files: dict) -> None:
        """Compare the last clean close's fingerprints (under a turn: nobody writes it meanwhile)."""
        for rel, want in files.items():
            f = root / rel
            got = _fingerprint(f) if f.is_file() else None
            if got != want:
                what = "is missing" if got is None else ("changed size" if got[0] != want[0] else
                                                         "changed content")
                raise self._damaged(f"{rel} {what} since it was last closed")

    def _count_all(self, shard) -> int:
        with self._reading():
            return shard.count(qe.CountRequest(filter=None, exact=True))

    @contextlib.contextmanager
    def _reading(self):
        """Engine errors that mean unreadable files -> IndexCorruptError (other errors pass through)."""
        try:
            yield
        except Exception as e:
            if type(e) is Exception and _DAMAGE.search(str(e)):
                raise self._damaged(f"a read failed: {_short(e)}") from None
            raise

    def vector_size(self, name: str = "study") -> int | None:
        cfg = self.path / "edge_config.json"
        if not cfg.exists():
            if self.path.is_dir() and any(self.path.iterdir()):
                raise self._damaged("edge_config.json is missing")
            return None
        try:
            vectors = json.loads(cfg.read_text()).get("vectors", {})
            return int(vectors[name]["size"]) if name in vectors else None
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            raise self._damaged("edge_config.json is unreadable") from None

    # ---- whole collections --------------------------------------------------------------------------
    def create(self, layout: dict[str, tuple[int | None, str]], indexes: dict[str, str], options=None) -> None:
        """Build the shard and its payload indexes in a temp folder, then rename it into place: a kill
        part-way leaves no half-made collection (the next open removes the temp folder). In the writer's
        turn: one that waited while another process created it opens that one (the caller re-reads sizes)."""
        with self._mode:
            if not self.writing:
                self._take_turn(load=True)          # made meanwhile by the turn's holder: opened here
            if self.shard is not None or self._exists():
                return
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / f".{self.path.name}.creating.{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                self._build(tmp, layout, indexes, options)
                os.replace(tmp, self.path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self._swap(self._load(self.path), None, None, writing=True)
            self._write_check(0, clean=False)

    @staticmethod
    def _build(tmp: Path, layout, indexes: dict[str, str], options) -> None:
        shard = qe.EdgeShard.create(str(tmp), _config(layout, options))
        try:
            for field, kind in indexes.items():
                shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[kind]))
            shard.flush()
        finally:
            shard.close()

    def remove(self) -> None:
        """Delete the collection (the writer's turn is held: no reader copies it meanwhile)."""
        with self._mode:
            if not self.writing:
                self._take_turn(load=False)
            shard = self._swap(None, None, None, writing=True)[0]
            if shard is not None:
                shard.close()
            shutil.rmtree(self.path, ignore_errors=True)
            self.check_path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._mode:
            if self.writing:
                self._give_back()
            else:
                shard, copy = self._swap(None, None, None, writing=False)
                if shard is not None:
                    shard.close()
                remove_copy(copy)
            self.turns.release()

    def flush(self) -> None:
        if not self.writing:
            return                                  # a reader's copy holds nothing to flush
        with self._use(write=True) as shard, self._check_lock:   # count and write together
            shard.flush()
            self._write_check(self._count_all(shard), clean=False)
        if not self._stay:                          # a reader's burst of writes ends: give the turn back
            with self._mode:
                if self.writing:
                    self._give_back()

    def optimize(self) -> None:
        with self._use(write=True) as shard:
            shard.optimize()

    # ---- writes ---------------------------------------------------------------------------------
    def upsert(self, points) -> None:
        with self._use(write=True) as shard:
            shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, {n: _to_edge(x) for n, x in v.items()}, p)
                                                           for i, v, p in points]))

    def delete(self, ids: list[str]) -> None:
        with self._use(write=True) as shard, self._check_lock:
            self._write_check(max(0, self._count_all(shard) - len(ids)), clean=False)   # fewer points: not damage
            shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, id_: str, payload: dict) -> None:
        with self._use(write=True) as shard:
            shard.update(qe.UpdateOperation.set_payload([id_], payload))

    # ---- reads ----------------------------------------------------------------------------------
    def retrieve(self, ids, with_vectors) -> list[Hit]:
        with self._use() as shard:
            return [_hit(r) for r in shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors)]

    def count(self, cond: Conditions) -> int:
        with self._use() as shard:
            return shard.count(qe.CountRequest(filter=_filter(cond), exact=True))

    def _params(self):
        return qe.SearchParams(hnsw_ef=self.hnsw_ef)

    def _query(self, query, cond, limit, with_payload, prefetches=None) -> list[Hit]:
        req = qe.QueryRequest(limit=limit, query=query, prefetches=prefetches, filter=_filter(cond),
                              with_payload=_payload_sel(with_payload), params=self._params())
        with self._use() as shard:
            return [_hit(p) for p in shard.query(req)]

    def nearest(self, using, vector, cond, limit, with_payload) -> list[Hit]:
        return self._query(qe.Query.Nearest(_to_edge(vector), using=using), cond, limit, with_payload)

    def recommend(self, using, positives, negatives, cond, limit, with_payload) -> list[Hit]:
        q = qe.Query.RecommendBestScore(qe.RecommendQuery(positives, negatives), using=using)
        return self._query(q, cond, limit, with_payload)

    def fuse(self, queries, cond, limit, prefetch_limit, with_payload) -> list[Hit]:
        flt = _filter(cond)
        pre = [qe.Prefetch(limit=prefetch_limit, query=qe.Query.Nearest(_to_edge(v), using=u), filter=flt,
                           params=self._params()) for u, v in queries]
        return self._query(qe.Fusion.Rrf(k=RRF_K), cond, limit, with_payload, prefetches=pre)

    def facet(self, key, cond, limit) -> list[tuple[object, int]]:
        with self._use() as shard:
            res = shard.facet(qe.FacetRequest(key=key, limit=limit, exact=True, filter=_filter(cond)))
        return [(h.value, h.count) for h in res.hits]

    def above(self, using, vector, cond, min_score, limit, offset, with_payload) -> list[Hit]:
        exact = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))
        req = qe.QueryRequest(limit=limit, offset=offset or None, query=qe.Query.Nearest(_to_edge(vector), using=using),
                              filter=_filter(cond), with_payload=_payload_sel(with_payload),
                              score_threshold=float(min_score), params=exact)
        with self._use() as shard:
            return [_hit(p) for p in shard.query(req)]

    def scroll(self, cond, with_vectors, batch, with_payload=True) -> Iterator[list[Hit]]:
        offset = None
        while True:
            with self._use() as shard:
                pts, offset = shard.scroll(qe.ScrollRequest(limit=batch, offset=offset, filter=_filter(cond),
                                                            with_payload=_payload_sel(with_payload),
                                                            with_vector=with_vectors))
            if pts:
                yield [_hit(p) for p in pts]
            if offset is None:
                return


def _fingerprint(f: Path) -> list:
    """[size, blake2b of SAMPLE_BLOCKS blocks spread over the file]: cheap at any index size; catches a
    truncated, deleted or overwritten file, not every flipped byte."""
    size = f.stat().st_size
    h = hashlib.blake2b(digest_size=12)
    with open(f, "rb") as fh:
        for i in range(SAMPLE_BLOCKS):
            fh.seek(max(0, size - SAMPLE_BYTES) * i // (SAMPLE_BLOCKS - 1))
            h.update(fh.read(SAMPLE_BYTES))
    return [size, h.hexdigest()]

def _remove_stale_creating(path: Path) -> None:
    """Remove the temp folders of creations whose process is gone (called under a turn)."""
    for old in path.parent.glob(f".{path.name}.creating.*") if path.parent.is_dir() else ():
        pid = _pid_of(old.name)
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(old, ignore_errors=True)


def _pid_of(name: str) -> int | None:
    tail = name.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else None

def _short(e: BaseException, n: int = 200) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[:n] + "..."


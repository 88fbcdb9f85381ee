"""Embedded backend: `qdrant-edge-py`, Qdrant's engine in-process, one shard folder per collection.

    DATA/index/cmr_studies/        the shard (edge_config.json, segments/, wal/)
    DATA/index/cmr_studies.lock    {"pid": ..., "started": ...} of the process that has it open
    DATA/index/cmr_studies.check   {"points": n, "clean": bool, "files": {...}}: what the last session left

One process at a time: Edge holds a lock on the WAL; a second open fails with `WouldBlock`, which becomes
IndexLockedError naming the holder from the lock file.

Damage is an error, never a silent short result (docs/failure.md): a new shard is built in a temp folder
and renamed into place; `close` records the point count and a fingerprint of every shard file (size and
blake2b of a few sampled blocks) and the next open compares them before loading; every open checks that
no point the last flush counted is gone; a read the engine cannot complete becomes IndexCorruptError.
Each names the folder and the rebuild command (`cmr index --data DATA --rebuild`).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
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

from ..errors import IndexCorruptError, IndexLockedError
from ..filters import Conditions
from .base import RRF_K, Backend, Hit, Sparse

SAMPLE_BLOCKS = 4          # blocks of each shard file hashed into the close-time fingerprint
SAMPLE_BYTES = 4096
_DAMAGE = re.compile(r"Service runtime error|IO Error|Gridstore|decompress|not readable", re.I)
_SCHEMA = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float,
           "integer": qe.PayloadSchemaType.Integer, "datetime": qe.PayloadSchemaType.Datetime}


class EdgeBackend(Backend):
    name = "embedded"

    def __init__(self, index_dir: str | Path, collection: str):
        self.dir = Path(index_dir)
        self.path = self.dir / collection
        self.lock_path = self.dir / f"{collection}.lock"
        self.check_path = self.dir / f"{collection}.check"
        self.where = str(self.path)
        self.shard = None
        self._check_lock = threading.RLock()       # threads share a backend: one check-file write at a time
        if (self.path / "edge_config.json").exists():
            self._open_checked()

    # ---- open / create / lock -----------------------------------------------------------------
    def _open_checked(self) -> None:
        """Load the shard after the damage checks; leave an 'open, not clean' check file behind."""
        check = self._read_check()
        if check.get("clean"):
            self._verify_files(check.get("files") or {})
        self.shard = self._load()
        self._write_lock()
        try:
            n = self._count_all()
            if n < int(check.get("points", 0)):
                raise self._damaged(f"{check['points']} points were stored, only {n} can be read")
        except BaseException:
            self.shard.close()
            self.shard = None
            raise
        self._write_check(n, clean=False)

    def _damaged(self, reason: str) -> IndexCorruptError:
        return IndexCorruptError(f"the embedded index at {self.where}", reason, str(self.dir.parent))

    def _load(self):
        try:
            return qe.EdgeShard.load(str(self.path))
        except Exception as e:                      # Edge raises plain Exception
            if "WouldBlock" in str(e):
                pid, started = self._read_lock()
                raise IndexLockedError(str(self.path), pid, started) from None
            raise self._damaged(f"the engine cannot load it: {_short(e)}") from None

    # ---- the check file: point count + file fingerprints of the last clean close ----------------------
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

    def _verify_files(self, files: dict) -> None:
        for rel, want in files.items():
            f = self.path / rel
            got = _fingerprint(f) if f.is_file() else None
            if got != want:
                if self._held_by_other():           # it is being written right now: not damage
                    raise IndexLockedError(str(self.path), *self._read_lock())
                what = "is missing" if got is None else ("changed size" if got[0] != want[0] else
                                                         "changed content")
                raise self._damaged(f"{rel} {what} since it was last closed")

    def _held_by_other(self) -> bool:
        pid = self._read_lock()[0]
        return pid is not None and pid != os.getpid() and pid_alive(pid)

    def _count_all(self) -> int:
        with self._reading():
            return self.shard.count(qe.CountRequest(filter=None, exact=True))

    @contextlib.contextmanager
    def _reading(self):
        """Engine errors that mean unreadable files -> IndexCorruptError (other errors pass through)."""
        try:
            yield
        except Exception as e:
            if type(e) is Exception and _DAMAGE.search(str(e)):
                raise self._damaged(f"a read failed: {_short(e)}") from None
            raise

    def _read_lock(self) -> tuple[int | None, str | None]:
        try:
            d = json.loads(self.lock_path.read_text())
            return int(d["pid"]), str(d["started"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def _write_lock(self) -> None:
        now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        # no fsync: the lock names a live process; after a crash it is stale whatever the disk kept
        atomic_write(self.lock_path, json.dumps({"pid": os.getpid(), "started": now}), fsync=False)

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

    def create(self, layout: dict[str, tuple[int | None, str]], indexes: dict[str, str], options=None) -> None:
        """Build the shard and its payload indexes in a temp folder, then rename it into place: a kill
        part-way leaves no half-made collection (the next create removes the temp folder)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob(f".{self.path.name}.creating.*"):
            if not pid_alive(_pid_of(old.name)):
                shutil.rmtree(old, ignore_errors=True)
        tmp = self.dir / f".{self.path.name}.creating.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shard = qe.EdgeShard.create(str(tmp), _config(layout, options))
        try:
            for field, kind in indexes.items():
                shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[kind]))
            shard.flush()
        finally:
            shard.close()
        os.replace(tmp, self.path)
        self.shard = self._load()
        self._write_lock()
        self._write_check(0, clean=False)

    def close(self) -> None:
        if self.shard is None:
            return
        try:
            self.shard.flush()
            n = self._count_all()
        except Exception:                           # damaged: close without vouching for it
            n = None
        self.shard.close()
        self.shard = None
        if n is not None:
            try:
                self._write_check(n, clean=True)
            except OSError:                         # e.g. disk full: the 'open, not clean' mark stays
                pass
        if self._read_lock()[0] == os.getpid():
            self.lock_path.unlink(missing_ok=True)

    def flush(self) -> None:
        with self._check_lock:                      # count and write together: no stale count after a delete
            self.shard.flush()
            self._write_check(self._count_all(), clean=False)

    def optimize(self) -> None:
        self.shard.optimize()

    # ---- writes ---------------------------------------------------------------------------------
    def upsert(self, points) -> None:
        self.shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, {n: _to_edge(x) for n, x in v.items()}, p)
                                                            for i, v, p in points]))

    def delete(self, ids: list[str]) -> None:
        with self._check_lock:
            self._write_check(max(0, self._count_all() - len(ids)), clean=False)   # fewer points: not damage
            self.shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, id_: str, payload: dict) -> None:
        self.shard.update(qe.UpdateOperation.set_payload([id_], payload))

    # ---- reads ----------------------------------------------------------------------------------
    def retrieve(self, ids, with_vectors) -> list[Hit]:
        with self._reading():
            return [_hit(r) for r in self.shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors)]

    def count(self, cond: Conditions) -> int:
        with self._reading():
            return self.shard.count(qe.CountRequest(filter=_filter(cond), exact=True))

    def _params(self):
        return qe.SearchParams(hnsw_ef=self.hnsw_ef)

    def _query(self, query, cond, limit, with_payload, prefetches=None) -> list[Hit]:
        req = qe.QueryRequest(limit=limit, query=query, prefetches=prefetches, filter=_filter(cond),
                              with_payload=_payload_sel(with_payload), params=self._params())
        with self._reading():
            return [_hit(p) for p in self.shard.query(req)]

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
        with self._reading():
            res = self.shard.facet(qe.FacetRequest(key=key, limit=limit, exact=True, filter=_filter(cond)))
        return [(h.value, h.count) for h in res.hits]

    def scroll(self, cond, with_vectors, batch) -> Iterator[list[Hit]]:
        offset = None
        while True:
            with self._reading():
                pts, offset = self.shard.scroll(qe.ScrollRequest(limit=batch, offset=offset, filter=_filter(cond),
                                                                 with_payload=True, with_vector=with_vectors))
            if pts:
                yield [_hit(p) for p in pts]
            if offset is None:
                return


def _config(layout: dict[str, tuple[int | None, str]], options=None):
    """The shard's EdgeConfig; quantized: int8 copies pinned in RAM, float32 originals left on disk (cold).
    Sparse vectors get Qdrant's IDF modifier (BM25 scoring, search/terms.py)."""
    if options is not None:
        options.check_embedded()
    quantize = options is not None and options.quantize
    vectors = {n: _params(size, kind == "multi", quantize) for n, (size, kind) in layout.items() if kind != "sparse"}
    sparse = {n: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)
              for n, (_, kind) in layout.items() if kind == "sparse"} or None
    if not quantize:
        return qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse)
    quant = qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Pinned)
    return qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse, quantization_config=quant)


def _to_edge(v):
    return qe.SparseVector(list(v.indices), list(v.values)) if isinstance(v, Sparse) else v


def _from_edge(v):
    return Sparse(list(v.indices), list(v.values)) if isinstance(v, qe.SparseVector) else v


def _params(size: int, multi: bool, cold: bool):
    kw = {"memory": qe.Memory.Cold} if cold else {}
    if multi:
        kw["multivector_config"] = qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim)
    return qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine, **kw)


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


def _pid_of(name: str) -> int | None:
    tail = name.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else None



def _short(e: BaseException, n: int = 200) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[:n] + "..."


def _payload_sel(with_payload):
    return qe.PayloadSelector.Include(list(with_payload)) if isinstance(with_payload, list) else with_payload


def _hit(p) -> Hit:
    vec = getattr(p, "vector", None)
    return Hit(id=str(p.id), score=float(getattr(p, "score", 0.0)), payload=dict(p.payload or {}),
               vectors={n: _from_edge(v) for n, v in vec.items()} if isinstance(vec, dict) else {})


def _condition(c: tuple):
    kind, key = c[0], c[1]
    if kind == "any":
        vals = c[2]
        return qe.FieldCondition(key=key, match=qe.MatchValue(vals[0]) if len(vals) == 1 else qe.MatchAny(vals))
    if kind == "range":
        return qe.FieldCondition(key=key, range=qe.RangeFloat(gte=c[2], lte=c[3]))
    if kind == "date":
        return qe.FieldCondition(key=key, range=qe.RangeDateTime(gte=c[2], lte=c[3]))
    raise ValueError(f"unknown condition {c!r}")


def _filter(cond: Conditions | None):
    if not cond:
        return None
    must = [_condition(c) for c in cond.must] or None
    must_not = [qe.HasIdCondition(set(cond.exclude_ids))] if cond.exclude_ids else None
    return qe.Filter(must=must, must_not=must_not)

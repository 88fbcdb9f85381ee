"""Embedded backend: `qdrant-edge-py`, Qdrant's engine in-process, one shard folder per collection.

    DATA/index/cmr_studies/        the shard (edge_config.json, segments/, wal/)
    DATA/index/cmr_studies.lock    {"pid": ..., "started": ...} of the process that has it open

One process at a time: Edge holds a lock on the WAL; a second open fails with `WouldBlock`, which becomes
IndexLockedError naming the holder from the lock file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Iterator

import qdrant_edge as qe

from ..errors import IndexLockedError, SearchError
from ..filters import Conditions
from .base import RRF_K, Backend, Hit

_SCHEMA = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float,
           "integer": qe.PayloadSchemaType.Integer, "datetime": qe.PayloadSchemaType.Datetime}


class EdgeBackend(Backend):
    name = "embedded"

    def __init__(self, index_dir: str | Path, collection: str):
        self.dir = Path(index_dir)
        self.path = self.dir / collection
        self.lock_path = self.dir / f"{collection}.lock"
        self.where = str(self.path)
        self.shard = None
        if (self.path / "edge_config.json").exists():
            self.shard = self._load()
            self._write_lock()

    # ---- open / create / lock -----------------------------------------------------------------
    def _load(self):
        try:
            return qe.EdgeShard.load(str(self.path))
        except Exception as e:                      # Edge raises plain Exception
            if "WouldBlock" in str(e):
                pid, started = self._read_lock()
                raise IndexLockedError(str(self.path), pid, started) from None
            raise SearchError(f"cannot open the embedded index at {self.path}: {e}. If it is damaged, "
                              "move it away and rebuild with `cmr index`.") from None

    def _read_lock(self) -> tuple[int | None, str | None]:
        try:
            d = json.loads(self.lock_path.read_text())
            return int(d["pid"]), str(d["started"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def _write_lock(self) -> None:
        now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        tmp = self.lock_path.with_name(f".{self.lock_path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"pid": os.getpid(), "started": now}))
        os.replace(tmp, self.lock_path)

    def vector_size(self) -> int | None:
        cfg = self.path / "edge_config.json"
        if not cfg.exists():
            return None
        vectors = json.loads(cfg.read_text()).get("vectors", {})
        return int(vectors["study"]["size"]) if "study" in vectors else None

    def create(self, dim: int, vectors: tuple[str, ...], indexes: dict[str, str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = qe.EdgeConfig(vectors={v: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)
                                     for v in vectors})
        self.shard = qe.EdgeShard.create(str(self.path), cfg)
        self._write_lock()
        for field, kind in indexes.items():
            self.shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[kind]))

    def close(self) -> None:
        if self.shard is None:
            return
        self.shard.flush()
        self.shard.close()
        self.shard = None
        if self._read_lock()[0] == os.getpid():
            self.lock_path.unlink(missing_ok=True)

    def flush(self) -> None:
        self.shard.flush()

    def optimize(self) -> None:
        self.shard.optimize()

    # ---- writes ---------------------------------------------------------------------------------
    def upsert(self, points) -> None:
        self.shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, v, p) for i, v, p in points]))

    def delete(self, ids: list[str]) -> None:
        self.shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, id_: str, payload: dict) -> None:
        self.shard.update(qe.UpdateOperation.set_payload([id_], payload))

    # ---- reads ----------------------------------------------------------------------------------
    def retrieve(self, ids, with_vectors) -> list[Hit]:
        return [_hit(r) for r in self.shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors)]

    def count(self, cond: Conditions) -> int:
        return self.shard.count(qe.CountRequest(filter=_filter(cond), exact=True))

    def _query(self, query, cond, limit, with_payload, prefetches=None) -> list[Hit]:
        req = qe.QueryRequest(limit=limit, query=query, prefetches=prefetches, filter=_filter(cond),
                              with_payload=_payload_sel(with_payload))
        return [_hit(p) for p in self.shard.query(req)]

    def nearest(self, using, vector, cond, limit, with_payload) -> list[Hit]:
        return self._query(qe.Query.Nearest(vector, using=using), cond, limit, with_payload)

    def recommend(self, using, positives, negatives, cond, limit, with_payload) -> list[Hit]:
        q = qe.Query.RecommendBestScore(qe.RecommendQuery(positives, negatives), using=using)
        return self._query(q, cond, limit, with_payload)

    def fuse(self, queries, cond, limit, prefetch_limit, with_payload) -> list[Hit]:
        flt = _filter(cond)
        pre = [qe.Prefetch(limit=prefetch_limit, query=qe.Query.Nearest(v, using=u), filter=flt)
               for u, v in queries]
        return self._query(qe.Fusion.Rrf(k=RRF_K), cond, limit, with_payload, prefetches=pre)

    def facet(self, key, cond, limit) -> list[tuple[object, int]]:
        res = self.shard.facet(qe.FacetRequest(key=key, limit=limit, exact=True, filter=_filter(cond)))
        return [(h.value, h.count) for h in res.hits]

    def scroll(self, cond, with_vectors, batch) -> Iterator[list[Hit]]:
        offset = None
        while True:
            pts, offset = self.shard.scroll(qe.ScrollRequest(limit=batch, offset=offset, filter=_filter(cond),
                                                             with_payload=True, with_vector=with_vectors))
            if pts:
                yield [_hit(p) for p in pts]
            if offset is None:
                return


def _payload_sel(with_payload):
    return qe.PayloadSelector.Include(list(with_payload)) if isinstance(with_payload, list) else with_payload


def _hit(p) -> Hit:
    vec = getattr(p, "vector", None)
    return Hit(id=str(p.id), score=float(getattr(p, "score", 0.0)), payload=dict(p.payload or {}),
               vectors=dict(vec) if isinstance(vec, dict) else {})


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

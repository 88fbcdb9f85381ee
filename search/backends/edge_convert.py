"""The embedded backend's translation between the neutral types of `Store` (backends/base.py) and Qdrant
Edge's classes: the shard config, vectors, filters, payload selectors and hits."""
from __future__ import annotations

import qdrant_edge as qe

from ..filters import Conditions
from .base import Hit, Sparse

_SCHEMA = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float,
           "integer": qe.PayloadSchemaType.Integer, "datetime": qe.PayloadSchemaType.Datetime}


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
    must = [_condition(c) for c in cond.must]
    if cond.only_ids is not None:
        must.append(qe.HasIdCondition(set(cond.only_ids)))
    must = must or None
    must_not = [qe.HasIdCondition(set(cond.exclude_ids))] if cond.exclude_ids else None
    return qe.Filter(must=must, must_not=must_not)

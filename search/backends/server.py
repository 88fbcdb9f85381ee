"""Server backend: `qdrant-client` against a Qdrant server (QDRANT_URL, QDRANT_API_KEY; compose.yaml).

Security (docs/privacy.md): a connection by URL needs an API key (api_key, else $QDRANT_API_KEY) unless
`insecure=True` (`--insecure`) says the server has no authentication on purpose; an https URL is verified
against the system CAs, or against a private CA bundle (tls_ca, else $QDRANT_TLS_CA; `--tls-ca FILE`).
The environment is read by search.settings.Settings, never here.

Tests pass `QdrantClient(":memory:")` (qdrant-client's local mode) as the stand-in for the server's API;
it is not a product backend (architecture.md §3). Every call is wrapped so that an unreachable server gives
ServerUnreachableError quickly instead of a long traceback or a hang.
"""
from __future__ import annotations

import functools
import ssl
import warnings
from typing import Iterator

from qdrant_client import QdrantClient, models as m
from qdrant_client.http.exceptions import UnexpectedResponse

from ..errors import SearchError, ServerSecurityError, ServerUnreachableError
from ..filters import Conditions
from ..settings import Settings
from .base import RRF_K, Backend, Hit, Sparse

DEFAULT_TIMEOUT_S = 10
_SCHEMA = {"keyword": m.PayloadSchemaType.KEYWORD, "float": m.PayloadSchemaType.FLOAT,
           "integer": m.PayloadSchemaType.INTEGER, "datetime": m.PayloadSchemaType.DATETIME}


def _guard(fn):
    """Turn connection failures into ServerUnreachableError (a one-line reason, no traceback chain)."""
    @functools.wraps(fn)
    def wrapper(self, *a, **kw):
        try:
            return fn(self, *a, **kw)
        except SearchError:
            raise
        except UnexpectedResponse as e:            # something answered, but not as a Qdrant server does
            why = "unauthorized: check QDRANT_API_KEY" if e.status_code in (401, 403) else \
                f"HTTP {e.status_code} {e.reason_phrase}: is this URL a Qdrant server, with the collection?"
            raise ServerUnreachableError(self.where, why) from None
        except Exception as e:                     # httpx / grpc / ResponseHandlingException
            text = f"{type(e).__name__}: {e}"
            if any(s in text for s in ("Connect", "connect", "Timeout", "timed out", "refused",
                                       "Unauthorized", "403", "401", "ResponseHandling")):
                raise ServerUnreachableError(self.where, text.splitlines()[0][:200]) from None
            raise
    return wrapper


def client_options(settings: Settings) -> dict:
    """QdrantClient keyword arguments for the settings' server: url, api_key and, with a private CA, verify."""
    s = settings
    url = s.url
    if not url:
        raise ServerSecurityError("no Qdrant server URL: pass --url / url=... or set QDRANT_URL.")
    if s.missing_api_key:
        raise ServerSecurityError(
            f"refusing to connect to the Qdrant server at {url} without an API key: set QDRANT_API_KEY or "
            "pass --api-key (api_key=... in Python); or pass --insecure (insecure=True) for a server without "
            "authentication on a network you trust.")
    opts = {"url": url, "api_key": s.api_key}
    if s.tls_ca:
        opts["verify"] = _ca_context(url, s.tls_ca)
    return opts


def _ca_context(url: str, ca: str) -> ssl.SSLContext:
    """A verifying TLS context that trusts the CA bundle `ca` (a PEM file), for an https URL."""
    if not url.lower().startswith("https://"):
        raise ServerSecurityError(f"a TLS CA ({ca}) was given but {url} is not an https:// URL; use "
                                  "https://HOST:6333 (the server needs TLS enabled) or drop --tls-ca / "
                                  "QDRANT_TLS_CA.")
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as e:
        raise ServerSecurityError(f"TLS CA file {ca} cannot be used ({e}); give the PEM bundle of the CA "
                                  "that signed the server's certificate (--tls-ca FILE or "
                                  "QDRANT_TLS_CA).") from None


class ServerBackend(Backend):
    name = "server"

    def __init__(self, collection: str, settings: Settings | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 client: QdrantClient | None = None):
        """`settings`: the server to reach (its URL, API key, TLS CA; search.settings); `client`: a
        qdrant-client object instead (tests: QdrantClient(':memory:'))."""
        self.collection = collection
        self.where = (settings.url if settings is not None else None) or ":memory:"
        if client is None:
            client = QdrantClient(**client_options(settings), timeout=int(max(1, timeout)), check_compatibility=False)
        self.client = client

    @_guard
    def vector_size(self, name: str = "study") -> int | None:
        if not self.client.collection_exists(self.collection):
            return None
        vectors = self.client.get_collection(self.collection).config.params.vectors
        return int(vectors[name].size) if isinstance(vectors, dict) and name in vectors else None

    @_guard
    def create(self, layout, indexes, options=None) -> None:
        try:
            self.client.create_collection(self.collection, **_layout(layout, options))
        except UnexpectedResponse as e:
            if e.status_code != 409:                # 409: another worker of a job array made it just now
                raise
        with warnings.catch_warnings():             # local mode (tests) says indexes have no effect there
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field, kind in indexes.items():
                self.client.create_payload_index(self.collection, field, _SCHEMA[kind])

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:                          # closing a dead connection is not an error
            pass

    # ---- writes ---------------------------------------------------------------------------------
    @_guard
    def upsert(self, points) -> None:
        self.client.upsert(self.collection, [m.PointStruct(id=i, vector={n: _to_client(x) for n, x in v.items()},
                                                           payload=p) for i, v, p in points], wait=True)

    @_guard
    def delete(self, ids) -> None:
        self.client.delete(self.collection, m.PointIdsList(points=list(ids)), wait=True)

    @_guard
    def set_payload(self, id_, payload) -> None:
        self.client.set_payload(self.collection, payload=payload, points=[id_], wait=True)

    # ---- reads ----------------------------------------------------------------------------------
    @_guard
    def retrieve(self, ids, with_vectors) -> list[Hit]:
        return [_hit(r) for r in self.client.retrieve(self.collection, list(ids), with_payload=True,
                                                      with_vectors=with_vectors)]

    @_guard
    def count(self, cond) -> int:
        return self.client.count(self.collection, count_filter=_filter(cond), exact=True).count

    def _params(self):
        return m.SearchParams(hnsw_ef=self.hnsw_ef)

    def _query(self, query, using, cond, limit, with_payload, prefetch=None) -> list[Hit]:
        res = self.client.query_points(self.collection, query=query, using=using, prefetch=prefetch,
                                       query_filter=_filter(cond), limit=limit, with_payload=with_payload,
                                       search_params=self._params())
        return [_hit(p) for p in res.points]

    @_guard
    def nearest(self, using, vector, cond, limit, with_payload) -> list[Hit]:
        return self._query(_to_client(vector), using, cond, limit, with_payload)

    @_guard
    def recommend(self, using, positives, negatives, cond, limit, with_payload) -> list[Hit]:
        q = m.RecommendQuery(recommend=m.RecommendInput(positive=positives, negative=negatives,
                                                        strategy=m.RecommendStrategy.BEST_SCORE))
        return self._query(q, using, cond, limit, with_payload)

    @_guard
    def fuse(self, queries, cond, limit, prefetch_limit, with_payload) -> list[Hit]:
        flt = _filter(cond)
        pre = [m.Prefetch(query=_to_client(v), using=u, limit=prefetch_limit, filter=flt,
                          params=self._params()) for u, v in queries]
        return self._query(m.RrfQuery(rrf=m.Rrf(k=RRF_K)), None, cond, limit, with_payload, prefetch=pre)

    @_guard
    def facet(self, key, cond, limit) -> list[tuple[object, int]]:
        res = self.client.facet(self.collection, key=key, facet_filter=_filter(cond), limit=limit, exact=True)
        return [(h.value, h.count) for h in res.hits]

    @_guard
    def above(self, using, vector, cond, min_score, limit, offset, with_payload) -> list[Hit]:
        exact = m.SearchParams(exact=True, quantization=m.QuantizationSearchParams(ignore=True))
        res = self.client.query_points(self.collection, query=_to_client(vector), using=using,
                                       query_filter=_filter(cond), limit=limit, offset=offset or None,
                                       with_payload=with_payload, score_threshold=float(min_score),
                                       search_params=exact)
        return [_hit(p) for p in res.points]

    @_guard
    def _page(self, cond, with_vectors, batch, offset, with_payload=True):
        return self.client.scroll(self.collection, scroll_filter=_filter(cond), limit=batch, offset=offset,
                                  with_payload=with_payload, with_vectors=with_vectors)

    def scroll(self, cond, with_vectors, batch, with_payload=True) -> Iterator[list[Hit]]:
        offset = None
        while True:
            pts, offset = self._page(cond, with_vectors, batch, offset, with_payload)
            if pts:
                yield [_hit(p) for p in pts]
            if offset is None:
                return


def _layout(layout: dict[str, tuple[int | None, str]], options=None) -> dict:
    """create_collection arguments: named cosine vectors (MaxSim multivectors and IDF-weighted sparse
    vectors where the layout says so), and from CollectionOptions the shard number, replication factor and
    int8 scalar quantization (the int8 copy in RAM, float32 originals on disk)."""
    quantize = bool(options and options.quantize)
    maxsim = m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM)
    out = {"vectors_config": {v: m.VectorParams(size=size, distance=m.Distance.COSINE, on_disk=quantize or None,
                                                multivector_config=maxsim if kind == "multi" else None)
                              for v, (size, kind) in layout.items() if kind != "sparse"}}
    sparse = {v: m.SparseVectorParams(modifier=m.Modifier.IDF) for v, (_, kind) in layout.items() if kind == "sparse"}
    if sparse:
        out["sparse_vectors_config"] = sparse
    if options is not None and options.shards is not None:
        out["shard_number"] = options.shards
    if options is not None and options.replicas is not None:
        out["replication_factor"] = options.replicas
    if quantize:
        out["quantization_config"] = m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(
            type=m.ScalarType.INT8, quantile=0.99, always_ram=True))
    return out


def _hit(p) -> Hit:
    vec = getattr(p, "vector", None)
    return Hit(id=str(p.id), score=float(getattr(p, "score", 0.0) or 0.0), payload=dict(p.payload or {}),
               vectors={n: _from_client(v) for n, v in vec.items()} if isinstance(vec, dict) else {})


def _to_client(v):
    return m.SparseVector(indices=list(v.indices), values=list(v.values)) if isinstance(v, Sparse) else v


def _from_client(v):
    return Sparse(list(v.indices), list(v.values)) if isinstance(v, m.SparseVector) else v


def _condition(c: tuple):
    kind, key = c[0], c[1]
    if kind == "any":
        vals = c[2]
        match = m.MatchValue(value=vals[0]) if len(vals) == 1 else m.MatchAny(any=vals)
        return m.FieldCondition(key=key, match=match)
    if kind == "range":
        return m.FieldCondition(key=key, range=m.Range(gte=c[2], lte=c[3]))
    if kind == "date":
        return m.FieldCondition(key=key, range=m.DatetimeRange(gte=c[2], lte=c[3]))
    raise ValueError(f"unknown condition {c!r}")


def _filter(cond: Conditions | None):
    if not cond:
        return None
    must = [_condition(c) for c in cond.must]
    if cond.only_ids is not None:
        must.append(m.HasIdCondition(has_id=list(cond.only_ids)))
    must = must or None
    must_not = [m.HasIdCondition(has_id=list(cond.exclude_ids))] if cond.exclude_ids else None
    return m.Filter(must=must, must_not=must_not)

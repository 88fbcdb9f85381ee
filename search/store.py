"""`Store`: the one interface to the index, over two backends (architecture.md §3).

    store = Store.open(settings, dim=model.embed_dim)              # settings: search.settings.Settings
    store = Store.open(data="cmr-data", dim=model.embed_dim)     # embedded, created if absent
    store = Store.open(url="http://localhost:6333", api_key=...)  # Qdrant server
    store.upsert_studies(rows)                                    # rows: see search/collection.py
    hits = store.nearest(vec, using="study", filters=Filter(sex="F"), limit=10)

The Store speaks study keys; point ids (UUID5 of the key) stay inside. Results are ranked best first with
ties broken by study key, so both backends and re-runs give the same order.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .backends.base import Backend, Hit
from .collection import (DEFAULT_COLLECTION, MULTI_VECTORS, PAYLOAD_INDEXES, SPARSE_VECTORS, TEXT_VECTORS,
                         VECTORS, CollectionOptions, as_sparse, layout, point_id, study_point)
from .errors import (EmbedSizeMismatchError, IndexMissingError, QueryError,
                     StudyNotFoundError)
from .filters import Filter, as_conditions
from .settings import Settings

MAX_LIMIT = 10_000
UPSERT_BATCH = 256
FUSE_SLACK = 10            # extra fused hits fetched so that ties at the cut are broken by key, not engine order
REPORT_TEXT_DIM = 384      # report-text vectors of a new collection: all-MiniLM-L6-v2 (model/report_text.py)


class Store:
    def __init__(self, backend: Backend, dim: int, collection: str, text_dim: int | None = None):
        self.backend, self.dim, self.collection = backend, dim, collection
        self.text_dim = text_dim          # size of report_text / report_clauses; None: an older collection

    # ---- open / create ----------------------------------------------------------------------------
    @classmethod
    def open(cls, data: Settings | str | Path | None = None, url: str | None = None, api_key: str | None = None,
             collection: str = DEFAULT_COLLECTION, dim: int | None = None, timeout: float | None = None,
             client=None, insecure: bool = False, tls_ca: str | None = None,
             options: CollectionOptions | None = None, text_dim: int | None = REPORT_TEXT_DIM,
             write: bool | None = None) -> "Store":
        """Open the collection; create it when absent and `dim` is given. `data`: the Settings to open
        (search/settings.py), or the data folder, with `url`, `api_key`, `insecure` and `tls_ca` beside it
        (completed by Settings.for_search: a data folder given means its embedded index, $QDRANT_URL
        applies only when neither it nor a URL nor `client` is given). A server URL or a qdrant-client
        `client` selects the server backend, otherwise the embedded store in DATA/index/. A server URL
        needs an API key unless `insecure`; `tls_ca`: a private CA bundle (backends/server.py).
        `options`: shards, replicas, quantization of a collection created now (collection.CollectionOptions);
        `text_dim`: size of its report-text vectors (None: none). `write` (embedded only; default: whether
        `dim` is given): take the writer's turn now and keep it until close, waiting for another writer;
        else search a private copy, shared with other processes' reads, and take the turn at the first
        write (backends/edge.py, docs/scale.md "Several processes on one embedded index")."""
        given = dict(url=url, api_key=api_key, tls_ca=tls_ca, insecure=insecure)
        settings = data.over(**given) if isinstance(data, Settings) else Settings.for_search(
            data=data, server_client=client is not None, **given)
        backend = _backend(settings, collection, timeout, client, dim is not None if write is None else write)
        try:
            size = backend.vector_size()
            if size is None and dim is None:
                raise IndexMissingError(f"{backend.where} (collection {collection!r})")
            if size is None:
                backend.create(layout(int(dim), text_dim), PAYLOAD_INDEXES, options)
                size = backend.vector_size() or int(dim)   # another process may have made it meanwhile
            if dim is not None and int(dim) != size:
                raise EmbedSizeMismatchError(size, int(dim), backend.where)
            text_size = backend.vector_size("report_text")
        except BaseException:
            backend.close()
            raise
        return cls(backend, size, collection, text_size)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def flush(self) -> None:
        self.backend.flush()

    def optimize(self) -> None:
        """Build the HNSW graph (embedded: minutes per 100,000 points; search is exact until then)."""
        self.backend.optimize()

    def check_model_dim(self, model_dim: int, model: str = "the model") -> None:
        if int(model_dim) != self.dim:
            raise EmbedSizeMismatchError(self.dim, int(model_dim), self.backend.where, model)

    # ---- writes -----------------------------------------------------------------------------------
    def upsert_studies(self, rows: Iterable[dict]) -> int:
        """Insert or replace studies (one point per study_key); returns how many were written."""
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        n, batch = 0, []
        for row in rows:
            batch.append(study_point(row, self.dim, now, self.text_dim))
            if len(batch) >= UPSERT_BATCH:
                n += self._write(batch)
                batch = []
        return n + (self._write(batch) if batch else 0)

    def _write(self, batch) -> int:
        self.backend.upsert(batch)
        return len(batch)

    def delete(self, keys: list[str]) -> None:
        self.backend.delete([point_id(k) for k in keys])

    def set_payload(self, key: str, payload: dict) -> None:
        """Set payload fields of one study (top-level keys replaced), e.g. labels and label_scores."""
        self.backend.set_payload(point_id(key), payload)

    # ---- reads ------------------------------------------------------------------------------------
    def get(self, keys: list[str], vectors: bool | list[str] = False) -> list[Hit]:
        """The studies with these keys, in the order given; StudyNotFoundError names any missing."""
        found = {h.id: h for h in self.backend.retrieve([point_id(k) for k in keys], vectors)}
        missing = [k for k in keys if point_id(k) not in found]
        if missing:
            raise StudyNotFoundError(missing)
        return [found[point_id(k)] for k in keys]

    def vectors_of(self, keys: list[str], using: str = "study") -> list[list[float]]:
        hits = self.get(keys, [using])
        lacking = [h.key for h in hits if using not in h.vectors]
        if lacking:
            raise QueryError(f"studies {lacking[:5]} have no {using!r} vector (no such views, or no report); "
                             "use view='study' or other examples.")
        return [h.vectors[using] for h in hits]

    def count(self, filters: Filter | None = None) -> int:
        return self.backend.count(as_conditions(filters))

    def nearest(self, vector, using: str = "study", filters: Filter | None = None, limit: int = 10,
                exclude: Iterable[str] = (), with_payload: bool | list[str] = True) -> list[Hit]:
        cond = as_conditions(filters, [point_id(k) for k in exclude])
        using = _using(using)
        return _ranked(self.backend.nearest(using, self._query_vec(vector, using), cond, check_limit(limit),
                                            _sel(with_payload)))

    def recommend(self, positives: list, negatives: list = (), using: str = "study",
                  filters: Filter | None = None, limit: int = 10, exclude: Iterable[str] = (),
                  with_payload: bool | list[str] = True) -> list[Hit]:
        """Relevance feedback by example vectors (best-score strategy). Exclude the examples' keys."""
        if not positives:
            raise QueryError("recommend needs at least one positive example.")
        cond = as_conditions(filters, [point_id(k) for k in exclude])
        hits = self.backend.recommend(_using(using), [self._vec(v) for v in positives],
                                      [self._vec(v) for v in negatives],
                                      cond, check_limit(limit), _sel(with_payload))
        return _ranked(hits)

    def fuse(self, queries: dict[str, list[float]], filters: Filter | None = None, limit: int = 10,
             prefetch_limit: int | None = None, exclude: Iterable[str] = (),
             with_payload: bool | list[str] = True) -> list[Hit]:
        """Reciprocal rank fusion of nearest-neighbour rankings, one per {vector name: query vector}.
        RRF scores tie often (ranks (i, j) and (j, i) sum alike), and an engine cuts at `limit` before
        the tie-break by key: the backend is asked for FUSE_SLACK more, ranked here, then cut."""
        cond = as_conditions(filters, [point_id(k) for k in exclude])
        limit = check_limit(limit)
        pre = prefetch_limit or max(100, 4 * limit)
        hits = self.backend.fuse([(_using(u), self._query_vec(v, u)) for u, v in queries.items()], cond,
                                 min(limit + FUSE_SLACK, MAX_LIMIT), pre, _sel(with_payload))
        return _ranked(hits)[:limit]

    def facet(self, field: str, filters: Filter | None = None, limit: int = 20) -> list[tuple[object, int]]:
        """Value counts of an indexed payload field (most frequent first)."""
        if field not in PAYLOAD_INDEXES:
            raise QueryError(f"cannot facet on {field!r}; indexed fields: {', '.join(PAYLOAD_INDEXES)}.")
        res = self.backend.facet(field, as_conditions(filters), limit)
        return sorted(res, key=lambda vc: (-vc[1], str(vc[0])))

    def scroll(self, filters: Filter | None = None, vectors: bool | list[str] = False,
               batch: int = 512, with_payload: bool | list[str] = True,
               among: Iterable[str] | None = None) -> Iterator[Hit]:
        """Every study matching `filters` (and among the study keys `among`, when given: keys, or a
        {key: point id} dict of Hits), in id order; `with_payload`: True, False or the fields to return."""
        cond = as_conditions(filters, only_ids=_ids(among))
        for page in self.backend.scroll(cond, vectors, batch, _sel(with_payload)):
            yield from page

    def above(self, vector, min_score: float, using: str = "study", filters: Filter | None = None,
              with_payload: bool | list[str] = True, among: Iterable[str] | None = None) -> list[Hit]:
        """EVERY study whose `using` vector scores >= min_score (cosine, -1..1) against `vector`, best first:
        an exact (brute-force, unquantized) search, paged MAX_LIMIT at a time; not top-k. Cohort criteria
        use it (search/criteria.py); a study without that vector is not among them. `among`: only these study keys."""
        using = _using(using)
        vec, sel = self._query_vec(vector, using), _sel(with_payload)
        cond = as_conditions(filters, only_ids=_ids(among))
        out: list[Hit] = []
        while True:
            page = self.backend.above(using, vec, cond, float(min_score), MAX_LIMIT, len(out), sel)
            out.extend(page)
            if len(page) < MAX_LIMIT:
                return _ranked(out)

    @property
    def has_report_text(self) -> bool:
        """Whether this collection holds report-text vectors (made by this version of `cmr index`)."""
        return self.text_dim is not None

    def _query_vec(self, v, using: str):
        """A query vector for `using`: report-text vectors are sized text_dim; a multivector query is the
        one vector wrapped in a list (MaxSim of one query vector = its best match among the clauses); a
        sparse query is a Sparse (or {index: value})."""
        if using not in TEXT_VECTORS:
            return self._vec(v)
        if self.text_dim is None:
            raise QueryError(f"{self.backend.where} has no {using!r} vectors: it was indexed before report-text "
                             "search existed. Re-index it with `cmr index --data DATA --rebuild`.")
        if using in SPARSE_VECTORS:
            if (sparse := as_sparse(v, using, "the query")) is None:
                raise QueryError(f"an empty {using!r} query: it needs at least one word.")
            return sparse
        vec = self._vec(v, self.text_dim, using)
        return [vec] if using in MULTI_VECTORS else vec

    def _vec(self, v, dim: int | None = None, what: str = "the query vector") -> list[float]:
        dim = dim or self.dim
        try:
            a = np.asarray(v, np.float32).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise QueryError(f"query vector {str(v)[:80]}: expected {dim} numbers (a study key is a "
                             "string).") from None
        if not np.isfinite(a).all():
            raise QueryError("query vector holds NaN or infinite values; pass a finite embedding.")
        if a.size != dim:
            raise EmbedSizeMismatchError(dim, a.size, self.backend.where, what)
        return a.tolist()

    def info(self) -> dict:
        """What a cohort records about the index it ran on."""
        return {"backend": self.backend.name, "where": self.backend.where, "collection": self.collection,
                "dim": self.dim, "report_text_dim": self.text_dim, "points": self.count(),
                "model_ids": [v for v, _ in self.facet("model_id", limit=10)]}

    # ---- whole collections: what `cmr index` needs beyond reads and writes --------------------------
    @property
    def where(self) -> str:
        """The store, in words: the embedded index's folder or the server's URL."""
        return self.backend.where

    @property
    def is_embedded(self) -> bool:
        """True for the embedded index in DATA/index (False for a Qdrant server)."""
        return self.backend.name == "embedded"

    def present(self, keys: list[str]) -> list[Hit]:
        """The studies of `keys` that are in the collection, with their payload (missing ones left out)."""
        return self.backend.retrieve([point_id(k) for k in keys], False)

    def copy_to(self, other: "Store", batch: int = 256, progress=None) -> int:
        """Copy every point (vectors and payload, same ids) into `other`, `batch` points at a time;
        `progress(n)` is called after each batch of n. Returns the point count of `other` afterwards."""
        page: list = []
        for hit in self.scroll(vectors=True, batch=batch):
            page.append((hit.id, hit.vectors, hit.payload))
            if len(page) >= batch:
                other.backend.upsert(page)
                if progress is not None:
                    progress(len(page))
                page = []
        if page:
            other.backend.upsert(page)
            if progress is not None:
                progress(len(page))
        return other.count()

    @staticmethod
    def check_server(settings: Settings) -> None:
        """Refuse a server that `open` would refuse (no URL; no API key unless `insecure`; an unusable
        TLS CA) before any work is done (backends/server.py)."""
        from .backends.server import client_options
        client_options(settings)

    @staticmethod
    def drop(settings: Settings, client=None, *, collection: str = DEFAULT_COLLECTION) -> None:
        """Delete the collection: the settings' server (or a qdrant-client `client`), else the embedded one
        in DATA/index; the next `open` with a `dim` creates it anew. An embedded index is removed in the
        writer's turn (after another writer, saying so); a damaged one too (that is what a rebuild is for)."""
        if settings.url or client is not None:
            from .backends.server import ServerBackend
            b = ServerBackend(collection, settings, client=client)
            if b.vector_size() is not None:
                b.client.delete_collection(collection)
            if client is None:
                b.close()
            return
        from .backends.edge import EdgeBackend
        backend = EdgeBackend(settings.folder.index, collection, write=True, load=False)
        try:
            backend.remove()                                  # in the writer's turn: no reader copies it now
        finally:
            backend.close()


def _backend(settings: Settings, collection: str, timeout: float | None, client=None, write: bool = True) -> Backend:
    """The server backend for a URL or a qdrant-client `client`, else the embedded one in DATA/index.
    Each backend module is imported only when used: qdrant-client and the embedded engine are heavy."""
    if client is not None or settings.url:
        from .backends.server import DEFAULT_TIMEOUT_S, ServerBackend
        return ServerBackend(collection, settings, timeout=timeout or DEFAULT_TIMEOUT_S, client=client)
    from .backends.edge import EdgeBackend
    return EdgeBackend(settings.folder.index, collection, write=write)


def _ranked(hits: list[Hit]) -> list[Hit]:
    return sorted(hits, key=lambda h: (-round(h.score, 6), h.key))


def _ids(keys: Iterable[str] | None) -> list[str] | None:
    """Point ids of study keys; a {study key: point id} mapping (Hit.key: Hit.id) is taken as it is."""
    if keys is None:
        return None
    return list(keys.values()) if isinstance(keys, dict) else [point_id(k) for k in keys]


def _using(name: str) -> str:
    if name not in VECTORS and name not in TEXT_VECTORS:
        raise QueryError(f"unknown vector {name!r}; the collection has {', '.join(VECTORS + TEXT_VECTORS)}.")
    return name


def check_limit(k) -> int:
    """k as a result count: an integer from 1 to MAX_LIMIT, else QueryError."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_LIMIT:
        raise QueryError(f"k={k!r}: expected an integer from 1 to {MAX_LIMIT}.")
    return k


def _sel(with_payload):
    """Always bring study_key back: results are keyed by it."""
    if isinstance(with_payload, list):
        return sorted(set(with_payload) | {"study_key"})
    return True if with_payload else ["study_key"]

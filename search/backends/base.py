"""What a backend must do. `Store` (search/store.py) is the only caller; it speaks point ids (UUID strings),
named vectors as float lists (a multivector: a list of them; a sparse vector: `Sparse`) and neutral
`Conditions`, so a backend is a thin adapter to one client API.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator

from ..collection import Sparse  # noqa: F401  (re-exported for the backends)
from ..filters import Conditions

RRF_K = 60          # reciprocal rank fusion constant, passed explicitly so both backends agree
SEARCH_HNSW_EF = 256   # HNSW search beam width, both backends (`Backend.hnsw_ef`). Qdrant's default is the
                       # build's ef_construct (100): recall@10 0.941 at 1,000,000 points; 256 gives 0.9945
                       # at p50 2.1 ms (bench/results/search_1m.json, sweep: bench/search.py --ef)


@dataclass
class Hit:
    """One point as returned by a query, retrieve or scroll."""
    id: str
    score: float = 0.0
    payload: dict = field(default_factory=dict)
    vectors: dict[str, list[float]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.payload.get("study_key", "")


class Backend(ABC):
    name = "?"
    where = "?"            # a path or URL, for messages
    hnsw_ef = SEARCH_HNSW_EF   # search beam width of every nearest / recommend / fused query

    @abstractmethod
    def vector_size(self, name: str = "study") -> int | None:
        """Size of the collection's vector `name`; None if the collection (or that vector) does not exist."""

    @abstractmethod
    def create(self, layout: dict[str, tuple[int | None, str]], indexes: dict[str, str], options=None) -> None:
        """Create the collection: layout {vector name: (size, kind)}, kind "dense" | "multi" | "sparse"
        (collection.layout);
        `options`: a collection.CollectionOptions (None = the defaults)."""

    @abstractmethod
    def upsert(self, points: list[tuple[str, dict[str, list[float]], dict]]) -> None: ...

    @abstractmethod
    def delete(self, ids: list[str]) -> None: ...

    @abstractmethod
    def retrieve(self, ids: list[str], with_vectors: bool | list[str]) -> list[Hit]: ...

    @abstractmethod
    def count(self, cond: Conditions) -> int: ...

    @abstractmethod
    def nearest(self, using: str, vector: list[float] | list[list[float]], cond: Conditions, limit: int,
                with_payload: bool | list[str]) -> list[Hit]: ...

    @abstractmethod
    def recommend(self, using: str, positives: list[list[float]], negatives: list[list[float]],
                  cond: Conditions, limit: int, with_payload: bool | list[str]) -> list[Hit]: ...

    @abstractmethod
    def fuse(self, queries: list[tuple[str, list[float]]], cond: Conditions, limit: int,
             prefetch_limit: int, with_payload: bool | list[str]) -> list[Hit]:
        """RRF (k=RRF_K) of one nearest-neighbour prefetch per (vector name, query vector)."""

    @abstractmethod
    def facet(self, key: str, cond: Conditions, limit: int) -> list[tuple[object, int]]: ...

    @abstractmethod
    def scroll(self, cond: Conditions, with_vectors: bool | list[str], batch: int,
               with_payload: bool | list[str] = True) -> Iterator[list[Hit]]: ...

    @abstractmethod
    def above(self, using: str, vector: list[float], cond: Conditions, min_score: float, limit: int,
              offset: int, with_payload: bool | list[str]) -> list[Hit]:
        """Exact (brute-force, unquantized) nearest search of every point scoring >= min_score, best first:
        the page of `limit` hits after the first `offset` (cohort criteria: search/criteria.py)."""

    @abstractmethod
    def set_payload(self, id_: str, payload: dict) -> None:
        """Set (merge at top level) payload fields of one point."""

    def optimize(self) -> None:
        """Build indexes (HNSW) now; a no-op where the backend does it by itself."""

    def flush(self) -> None: ...

    def close(self) -> None: ...

"""The app's decisions as plain functions (tested without Streamlit): queries with feedback, small-count
suppression, facets, the cohort built from the basket, the 2-D map of the embeddings."""
from __future__ import annotations

import datetime as _dt
from collections import Counter

import numpy as np
import polars as pl

from cmr_search.search import Filter
from cmr_search.search.cohort import FORMAT, Cohort
from cmr_search.search.cohort_result import small  # noqa: F401  (the small-cell rule; the cohort page imports it from here)
from cmr_search.search.collection import model_id

from .safe_text import clean

FACET_FIELDS = {"sex": "sex", "vendor": "manufacturer", "labels": "labels"}


def make_filter(fields: dict):
    """Sidebar values -> search.Filter (None when nothing is set); empty values are dropped."""
    kept = {k: (tuple(v) if isinstance(v, list) and k in ("age", "date", "field_strength") else v)
            for k, v in fields.items() if v not in (None, "", [], ())}
    return Filter(**kept) if kept else None


def run_query(client, query: str, k: int, mode: str, view: str, filters=None, positive=(), negative=()):
    """Text search, or relevance feedback (Client.refine with the query as one more positive) once the
    user has given 👍/👎. Feedback uses the image vector of `view`; the rated studies leave the list."""
    if positive or negative:
        return client.refine(list(positive), list(negative), k=k, query=query or None, view=view,
                             filters=filters)
    return client.search(query, k=k, filters=filters, mode=mode, view=view)


def count_values(rows: list[dict], field: str) -> list[tuple[str, int]]:
    """Value counts of a payload field over rows (list fields count each element), most frequent first."""
    c: Counter = Counter()
    for r in rows:
        v = r.get(field)
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            c["(none)" if x is None else str(x)] += 1
    return sorted(c.items(), key=lambda vc: (-vc[1], vc[0]))


def facet_frame(pairs: list[tuple[object, int]]) -> pl.DataFrame:
    return pl.DataFrame({"value": [str(v) for v, _ in pairs], "studies": [small(n) for _, n in pairs]},
                        schema={"value": pl.Utf8, "studies": pl.Utf8})


SCORE_COLUMNS = {"report_cosine": "report cosine (best clause, -1..1)", "image_cosine": "image cosine (-1..1)"}


def score_columns(basket: dict) -> list[str]:
    """The readable scores (cosines) some basket row carries, in SCORE_COLUMNS order."""
    return [c for c in SCORE_COLUMNS if any(r.get(c) is not None for r in basket.values())]


def kept_keys(basket: dict, threshold: float, column: str = "report_cosine") -> list[str]:
    """Basket keys whose `column` (a cosine) is at least `threshold`, best first (ties by key); studies
    without that score (hand-picked, or added by another kind of search) are always kept, after the others."""
    def order(r):
        s = r.get(column)
        return (s is None, -(s or 0.0), r["study_key"])
    rows = sorted(basket.values(), key=order)
    return [r["study_key"] for r in rows if r.get(column) is None or r[column] >= threshold]


def cohort_from_basket(client, basket: dict, threshold: float, spec: dict, column: str = "report_cosine"):
    """The basket (at or above the threshold on `column`) as a search.Cohort: the query spec that produced
    it, the index it ran on, and its keys with their readable scores; exports through Cohort.export."""
    keys = kept_keys(basket, threshold, column)
    scores = [float(basket[k][column]) if basket[k].get(column) is not None else None for k in keys]
    full = {"format": FORMAT, "query": spec.get("query") or "", "mode": spec.get("mode", "hybrid"),
            "view": spec.get("view", "study"), "k": int(spec.get("k", 20)), "filters": spec.get("filters") or {},
            "model_id": model_id(client.model), "index": client.info(), "threshold": threshold,
            "threshold_on": column,
            "feedback": {"positive": list(spec.get("positive", [])), "negative": list(spec.get("negative", []))},
            "source": "cmr ui basket",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    cohort = Cohort(full, keys, scores)
    cohort.frame = cohort._fetch(client) if keys else None
    return cohort


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, 2) principal-component coordinates (numpy SVD of the centred matrix)."""
    x = np.asarray(vectors, np.float64)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = x @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


MAP_LIMIT = 5_000          # points drawn on the map (the first ones scrolled; a browser chart's comfort)


def embedding_map(client, limit: int = MAP_LIMIT) -> pl.DataFrame:
    """Studies' `study` vectors (up to `limit`) projected to 2-D, with the fields the map shows on hover."""
    hits = [h for _, h in zip(range(limit), client.store.scroll(vectors=["study"]))]
    if not hits:
        return pl.DataFrame()
    xy = pca_2d(np.array([h.vectors["study"] for h in hits]))
    rows = []
    for h, (x, y) in zip(hits, xy):
        p = h.payload
        labels = p.get("labels") or []
        rows.append({"study_key": h.key, "x": float(x), "y": float(y), "age": p.get("age"), "sex": clean(p.get("sex")),
                     "labels": clean(",".join(labels) or "(none)"), "manufacturer": clean(p.get("manufacturer")),
                     "field_strength": str(p.get("field_strength")), "impression": clean((p.get("impression") or "")[:80])})
    return pl.DataFrame(rows).sort("study_key")

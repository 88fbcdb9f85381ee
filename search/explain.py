"""Why a study is a hit for a text query: which report clauses matched, what the report says of each part,
which image view carried the match.

    from cmr_search.search.explain import explain
    why = explain(client, study_key, "amyloid LGE pattern")
    why.segments   # [("LV dilated, ", "affirmed"), ("no LGE", "negated"), (".", "affirmed")]: the impression
                   # as runs a display strikes through (negated), greys (uncertain), tags (historical, family)
    why.clauses    # [("diffuse subendocardial LGE", 0.71), ...]: the clauses the index holds, best first,
                   # cosine with the query in the report-text space (what report_clauses' MaxSim scored)
    why.views      # {"study": 0.42, "cine": 0.18, "lge": 0.47}: cosine of the query with each image vector
    why.findings   # ['AMYLOID:affirmed', 'LGE:affirmed']: the report's findings (model/report_context.py)
    explain_hits(client, keys, "amyloid LGE pattern")   # {key: Explanation} for a page of hits at once

Scores are cosines (-1..1) in the space named; nothing here is a fused rank. The clauses are recomputed
from the stored impression exactly as `cmr index` cut them (model/report_text.py), and paired with the
stored clause vectors, so the best clause is the one the engine's MaxSim used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cmr_search.model.report_context import affirmed_clauses, segments
from cmr_search.model.report_text import MAX_CLAUSES

IMAGE_VIEWS = ("study", "cine", "lge")


@dataclass
class Explanation:
    study_key: str
    query: str
    impression: str = ""                                             # the stored (de-identified) impression
    segments: list[tuple[str, str]] = field(default_factory=list)   # the impression as (piece, status) runs
    clauses: list[tuple[str, float]] = field(default_factory=list)  # indexed clauses, best match first
    views: dict[str, float] = field(default_factory=dict)           # image view -> cosine with the query
    findings: list[str] = field(default_factory=list)               # 'CONCEPT:status' payload keys

    @property
    def best_clause(self) -> str | None:
        return self.clauses[0][0] if self.clauses else None

    @property
    def best_view(self) -> str | None:
        return max(self.views, key=self.views.get) if self.views else None

    def cosines(self, view: str = "study") -> dict[str, float]:
        """The scores a person reads, each a cosine (-1..1) in its space: image_cosine (the `view` vector
        with the query in the study space), report_cosine (the best indexed clause in the report space)."""
        out = {"image_cosine": self.views.get(view)}
        out["report_cosine"] = self.clauses[0][1] if self.clauses else None
        return {k: v for k, v in out.items() if v is not None}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def indexed_clauses(impression: str) -> list[str]:
    """The clause texts `cmr index` embedded for this impression, in the order of its clause vectors."""
    kept = affirmed_clauses(impression)
    return kept[:MAX_CLAUSES] or [impression.strip()]


def explain(client, study_key: str, query: str) -> Explanation:
    """Explanation of `study_key` as a hit for the text `query` (see the module docstring)."""
    return explain_hits(client, [study_key], query)[study_key]


def explain_hits(client, keys: list[str], query: str) -> dict[str, Explanation]:
    """Explanations of several hits of one query (a result page): one fetch, each query space encoded once."""
    names = [*IMAGE_VIEWS] + (["report_clauses"] if client.store.has_report_text else [])
    hits = client.store.get(list(keys), vectors=names)
    q_img = _unit(client.encode_query(query))
    q_rep = _unit(client.encode_report_query(query)) if "report_clauses" in names else None
    return {h.key: _explained(h, query, q_img, q_rep) for h in hits}


def _explained(hit, query: str, q_img: np.ndarray, q_rep: np.ndarray | None) -> Explanation:
    impression = hit.payload.get("impression") or ""
    why = Explanation(hit.key, query, impression, segments(impression),
                      findings=list(hit.payload.get("report_findings") or []))
    why.views = {v: round(float(_unit(hit.vectors[v]) @ q_img), 4) for v in IMAGE_VIEWS if v in hit.vectors}
    if impression and q_rep is not None and "report_clauses" in hit.vectors:
        vecs = _unit(np.asarray(hit.vectors["report_clauses"], np.float32))
        scores = vecs @ q_rep
        texts = indexed_clauses(impression)
        if len(texts) == len(scores):              # an index built by another reading: no pairing is claimed
            why.clauses = sorted(((t, round(float(s), 4)) for t, s in zip(texts, scores)), key=lambda x: -x[1])
    return why

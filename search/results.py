"""The result records every query returns (architecture.md §8): `RESULT_SCHEMA` and `to_frame`, shared by
the client (search/client.py) and cohorts (search/cohort.py) without either importing the other."""
from __future__ import annotations

import polars as pl

from .backends.base import Hit
from .collection import MEASUREMENTS

RESULT_SCHEMA = {
    "study_key": pl.Utf8, "score": pl.Float64, "age": pl.Float64, "sex": pl.Utf8, "study_date": pl.Utf8,
    "manufacturer": pl.Utf8, "field_strength": pl.Float64, "views": pl.List(pl.Utf8),
    "labels": pl.List(pl.Utf8), "impression": pl.Utf8,
    "label_scores": pl.List(pl.Struct({"label": pl.Utf8, "score": pl.Float64})),
    "patient_key": pl.Utf8, "model_name": pl.Utf8, "n_frames": pl.Int64, "model_id": pl.Utf8,
    # measurements (collection.MEASUREMENTS; null where the study was not measured) and their quality
    **dict.fromkeys(MEASUREMENTS, pl.Float64), "seg_quality": pl.Utf8, "seg_flags": pl.List(pl.Utf8),
}


def to_frame(hits: list[Hit]) -> pl.DataFrame:
    """Hits -> the result DataFrame (architecture.md §8), best first, fixed columns and types."""
    rows = []
    for h in hits:
        row = {c: h.payload.get(c) for c in RESULT_SCHEMA}
        row["score"] = h.score
        row["label_scores"] = [{"label": k, "score": float(v)}
                               for k, v in sorted((h.payload.get("label_scores") or {}).items())]
        rows.append(row)
    return pl.DataFrame(rows, schema=RESULT_SCHEMA, strict=False)

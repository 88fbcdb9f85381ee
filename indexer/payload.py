"""What one study's point carries (the payload of architecture.md §3), and which studies the index already
holds up to date: a point with the same `model_id` and `source_fingerprint` (the cache's hash of the
study's files and report) is skipped by a re-run."""
from __future__ import annotations

import json

from cmr_search.search.store import Store

PAYLOAD_COLUMNS = ("study_key", "patient_key", "age", "sex", "study_date", "manufacturer", "model_name",
                   "field_strength", "views", "n_frames", "impression")
LOOKUP_CHUNK = 512                         # study keys per lookup when checking what is already indexed


def payload_row(row: dict, vectors: dict, mid: str) -> dict:
    """A cache row + its vectors -> the study row `Store.upsert_studies` takes (collection.py)."""
    out = {c: row.get(c) for c in PAYLOAD_COLUMNS}
    out["views"] = list(out["views"] or [])
    try:
        out["qa"] = json.loads(row["qa"]) if isinstance(row.get("qa"), str) else (row.get("qa") or {})
    except ValueError:
        out["qa"] = {"raw": row.get("qa")}
    out["model_id"] = mid
    out["source_fingerprint"] = row.get("source_fingerprint")
    if row.get("label") is not None:                       # ground truth: synthetic archives only
        out["label"] = row["label"]
    out["vectors"] = {k: v for k, v in vectors.items() if v is not None}
    return out


def already_indexed(store: Store, keys: list[str], mid: str, fps: dict[str, str]) -> set[str]:
    """Keys whose point exists with this model_id and source fingerprint."""
    done = set()
    for s in range(0, len(keys), LOOKUP_CHUNK):
        for h in store.present(keys[s:s + LOOKUP_CHUNK]):
            k = h.payload.get("study_key")
            if k in fps and h.payload.get("model_id") == mid and h.payload.get("source_fingerprint") == fps[k]:
                done.add(k)
    return done

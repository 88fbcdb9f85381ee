"""What one study's point carries (the payload of architecture.md §3), and which studies the index already
holds up to date: a point with the same `model_id` and `source_fingerprint` (the cache's hash of the
study's files and report) is skipped by a re-run; if its measurements came from another segmenter (or
none) than the cache row's (`seg_fingerprint`), only its payload's measurement fields are rewritten
(`measurement_payload`), never its vectors."""
from __future__ import annotations

import json
import math

from cmr_search.model.report_context import finding_keys
from cmr_search.search.collection import MEASUREMENTS, SEG_FIELDS
from cmr_search.search.store import Store

PAYLOAD_COLUMNS = ("study_key", "patient_key", "age", "sex", "study_date", "manufacturer", "model_name",
                   "field_strength", "views", "n_frames", "impression")
LOOKUP_CHUNK = 512                         # study keys per lookup when checking what is already indexed


def measurement_payload(row: dict) -> dict:
    """The measurement fields of a cache row (search.collection.MEASUREMENTS and SEG_FIELDS); a value that
    is absent or not finite becomes None (null), which no range filter matches."""
    out = {}
    for c in (*MEASUREMENTS, "bsa"):
        v = row.get(c)
        out[c] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
    out["seg_quality"] = row.get("seg_quality")
    out["seg_flags"] = list(row.get("seg_flags") or [])
    out["seg_fingerprint"] = row.get("seg_fingerprint")
    return out


def payload_row(row: dict, vectors: dict, mid: str) -> dict:
    """A cache row + its vectors -> the study row `Store.upsert_studies` takes (collection.py)."""
    out = {c: row.get(c) for c in PAYLOAD_COLUMNS}
    out["views"] = list(out["views"] or [])
    try:
        out["qa"] = json.loads(row["qa"]) if isinstance(row.get("qa"), str) else (row.get("qa") or {})
    except ValueError:
        out["qa"] = {"raw": row.get("qa")}
    found = row.get("report_findings")        # None: a cache prepared before findings were read
    out["report_findings"] = list(found) if found is not None else finding_keys(row.get("impression") or "")
    out["model_id"] = mid
    out["source_fingerprint"] = row.get("source_fingerprint")
    out.update(measurement_payload(row))
    if row.get("label") is not None:                       # ground truth: synthetic archives only
        out["label"] = row["label"]
    out["vectors"] = {k: v for k, v in vectors.items() if v is not None}
    return out


def already_indexed(store: Store, keys: list[str], mid: str, fps: dict[str, str],
                    segs: dict[str, str | None] | None = None) -> tuple[set[str], set[str]]:
    """(keys whose point exists with this model_id and source fingerprint, those of them whose payload
    lacks the measurements of the cache row: its `seg_fingerprint` differs from segs[key])."""
    done, stale = set(), set()
    segs = segs or {}
    for s in range(0, len(keys), LOOKUP_CHUNK):
        for h in store.present(keys[s:s + LOOKUP_CHUNK]):
            k = h.payload.get("study_key")
            if k in fps and h.payload.get("model_id") == mid and h.payload.get("source_fingerprint") == fps[k]:
                done.add(k)
                if segs.get(k) is not None and h.payload.get("seg_fingerprint") != segs[k]:
                    stale.add(k)
    return done, stale

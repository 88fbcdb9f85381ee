"""The collection contract (architecture.md §3): one point per study, named cosine vectors, payload.

A study row handed to `Store.upsert_studies` is a dict:
    {"study_key": "ab12...",                       # salted key (indexer/identifiers.py), required
     "vectors": {"study": vec, "cine": vec, "lge": vec or None, "report": vec or None,
                 "report_text": vec or None, "report_clauses": [vec, ...] or None,
                 "report_terms": Sparse(indices, values) or None},
     "age": 54.0, "sex": "F", "study_date": "2020-01-02", "manufacturer": "Siemens", ...}
The four model vectors are sized by the model (`embed_dim`), never by a constant here. The two report-text
vectors live in the sentence encoder's space (model/report_text.py, `text_dim`): `report_text` is the
affirmed report as one text, `report_clauses` one vector per affirmed clause (a multivector compared by
MaxSim); text -> report search ranks by both (docs/search.md). A missing vector (no LGE, no report) is
simply absent from the point. A collection made before the report-text vectors has none of them.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import hashlib
import re
import uuid
from dataclasses import dataclass

import numpy as np

from .errors import CollectionOptionsError, EmbedSizeMismatchError, PayloadError, QueryError

DEFAULT_COLLECTION = "cmr_studies"
VECTORS = ("study", "cine", "lge", "report")          # named vectors in the model's space, all cosine
TEXT_VECTORS = ("report_text", "report_clauses", "report_terms")   # report text, beside the model's space:
MULTI_VECTORS = ("report_clauses",)        # a multivector (text_dim): one per affirmed clause, scored by MaxSim
SPARSE_VECTORS = ("report_terms",)         # sparse BM25 term weights (search/terms.py), IDF from the engine
VIEWS = ("study", "cine", "lge")                      # the image vectors a text query can target
NAMESPACE = uuid.UUID("6f1c4a52-3f0e-5c8e-9a57-2f0d6c1e9b11")   # fixed: ids must never change

# measurements from the cine SAX masks (indexer/measurements.py): ml, %, g, mm, and per m^2 of body surface
# (the *i values); absent (null) where a study could not be measured: such a study matches no range on them
MEASUREMENTS = ("lvef", "lvedv", "lvesv", "lv_mass", "max_wall", "rvef", "rvedv", "rvesv",
                "lvedvi", "lvesvi", "lv_massi", "rvedvi", "rvesvi")
SEG_FIELDS = ("bsa", "seg_quality", "seg_flags", "seg_fingerprint")   # beside them: m^2, good|check|poor, ...
# payload field -> index type (neutral names; each backend maps them). Filtered fields only.
PAYLOAD_INDEXES = {
    "study_key": "keyword", "patient_key": "keyword", "sex": "keyword", "manufacturer": "keyword",
    "model_name": "keyword", "views": "keyword", "labels": "keyword", "model_id": "keyword",
    "age": "float", "field_strength": "float", "n_frames": "integer", "study_date": "datetime",
    "seg_quality": "keyword", "report_findings": "keyword", **dict.fromkeys(MEASUREMENTS, "float"),
}
PAYLOAD_FIELDS = ("study_key", "patient_key", "age", "sex", "study_date", "manufacturer", "model_name",
                  "field_strength", "views", "n_frames", "impression", "labels", "label_scores",
                  "model_id", "indexed_at", "qa", "report_findings", *MEASUREMENTS, *SEG_FIELDS)
# report_findings: 'CONCEPT:status' keys of the report's CMR findings (model/report_context.py: 'LGE:affirmed',
# 'HCM:family'), from the whole report at `cmr prepare` (from the impression for a cache prepared before)
# never in the vector store: these live in link.parquet only (architecture.md §3)
FORBIDDEN = ("study_instance_uid", "accession_number", "patient_id", "patient_name", "birth_date",
             "source_path", "mrn")


@dataclass
class Sparse:
    """A sparse vector (`report_terms`): non-negative uint32 indices and their values."""
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class CollectionOptions:
    """How a NEW collection is laid out; an existing collection keeps the layout it was created with
    (`cmr index --rebuild` to change it). docs/scale.md and docs/sizing.md say when to use what."""
    quantize: bool = False          # int8 scalar quantization of every named vector: the int8 copy in RAM,
                                    # the float32 originals on disk (rescoring); about 4x less vector memory
    shards: int | None = None       # server only: shard_number (spread over a cluster's nodes)
    replicas: int | None = None     # server only: replication_factor (copies of each shard, distinct nodes)

    def __post_init__(self):
        for name in ("shards", "replicas"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise CollectionOptionsError(f"{name}={v!r}: expected a whole number of at least 1.")

    def check_embedded(self) -> None:
        """The embedded store is one shard in one folder: more shards or replicas need a server."""
        if (self.shards or 1) > 1 or (self.replicas or 1) > 1:
            raise CollectionOptionsError(
                f"shards={self.shards}, replicas={self.replicas}: the embedded index is a single shard on this "
                "machine; shards and replicas apply to a Qdrant server or cluster (--url, compose.cluster.yaml).")


_VENDORS = {"siemens": "Siemens", "ge": "GE", "general electric": "GE", "philips": "Philips",
            "canon": "Canon", "toshiba": "Canon", "hitachi": "Hitachi", "fujifilm": "Hitachi"}


def point_id(study_key: str) -> str:
    """UUID5 of the study key: re-indexing a study upserts the same point. QueryError for a key that
    is not a string or not valid text (lone surrogates: undecodable bytes from the command line)."""
    try:
        return str(uuid.uuid5(NAMESPACE, study_key))
    except (TypeError, UnicodeEncodeError):
        raise QueryError(f"study key {study_key!r} is not a study key: expected the text of a "
                         "`study_key` column of search results.") from None


def canonical_vendor(name: str | None) -> str | None:
    """'SIEMENS Healthineers' -> 'Siemens', 'GE MEDICAL SYSTEMS' -> 'GE'; unknown names kept as given."""
    if not name:
        return None
    low = name.strip().lower()
    for prefix, canon in _VENDORS.items():
        if re.match(rf"{re.escape(prefix)}\b", low):
            return canon
    return name.strip()


def iso_date(value, end: bool = False) -> str | None:
    """'20200102', '2020-01-02', '2020-01', '2020', date -> 'YYYY-MM-DD'. A partial date means its first day
    (or its last day with end=True, for the upper bound of a range)."""
    if value is None or value == "":
        return None
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.strftime("%Y-%m-%d")
    s = str(value).strip()
    m = re.fullmatch(r"(\d{4})-?(\d{2})?-?(\d{2})?", s)
    if not m:
        raise PayloadError(f"date {value!r} is not YYYY, YYYY-MM, YYYY-MM-DD or YYYYMMDD.")
    y, mo, d = int(m[1]), int(m[2] or (12 if end else 1)), m[3]
    try:
        if d is None:      # the month's first or last day (calendar: month 13 raises a ValueError too)
            d = calendar.monthrange(y, mo)[1] if end else 1
        return _dt.date(y, mo, int(d)).isoformat()
    except ValueError as e:
        raise PayloadError(f"date {value!r} is not a calendar date ({e}).") from None


def as_vector(v, dim: int, name: str, key: str) -> list[float] | None:
    """A 1-d finite vector of size dim as a list, or None when absent."""
    if v is None:
        return None
    a = np.asarray(v, np.float32).reshape(-1)
    if a.size != dim:
        raise EmbedSizeMismatchError(dim, a.size, "this collection", f"vector {name!r} of study {key!r}")
    if not np.isfinite(a).all() or not a.any():
        raise PayloadError(f"vector {name!r} of study {key!r} is zero or not finite; re-embed the study.")
    return a.tolist()


def layout(dim: int, text_dim: int | None) -> dict[str, tuple[int | None, str]]:
    """{vector name: (size, kind)} of a new collection, kind "dense" | "multi" | "sparse" (size None);
    text_dim None: no report-text vectors."""
    out = {v: (dim, "dense") for v in VECTORS}
    for v in TEXT_VECTORS if text_dim else ():
        if v in SPARSE_VECTORS:
            out[v] = (None, "sparse")
        else:
            out[v] = (text_dim, "multi" if v in MULTI_VECTORS else "dense")
    return out


def as_sparse(v, name: str, key: str) -> Sparse | None:
    """A Sparse (or {index: value}) with finite values and unique uint32 indices, or None when empty."""
    if v is None:
        return None
    if isinstance(v, dict):
        v = Sparse(sorted(v), [v[i] for i in sorted(v)])
    idx, val = [int(i) for i in v.indices], [float(x) for x in v.values]
    if not idx:
        return None
    if len(idx) != len(val) or len(set(idx)) != len(idx) or not all(0 <= i < 2 ** 32 for i in idx) \
            or not np.isfinite(val).all():
        raise PayloadError(f"sparse vector {name!r} of study {key!r} needs unique uint32 indices and one "
                           "finite value each; re-index the study.")
    return Sparse(idx, val)


def as_multivector(v, dim: int, name: str, key: str) -> list[list[float]] | None:
    """A (n, dim) array-like of finite rows as a list of lists, or None when absent or empty."""
    if v is None or len(v) == 0:
        return None
    return [as_vector(row, dim, name, key) for row in v]


def _vectors(raw: dict, key: str, dim: int, text_dim: int | None) -> dict:
    unknown = set(raw) - set(VECTORS) - set(TEXT_VECTORS)
    if unknown:
        raise PayloadError(f"unknown vector names {sorted(unknown)}; the collection has "
                           f"{list(VECTORS) + list(TEXT_VECTORS)}.")
    vectors = {n: v for n in VECTORS if (v := as_vector(raw.get(n), dim, n, key)) is not None}
    if text_dim is None:                                # an older collection: no report-text vectors
        return vectors
    for n in TEXT_VECTORS:
        if n in SPARSE_VECTORS:
            v = as_sparse(raw.get(n), n, key)
        else:
            v = (as_multivector if n in MULTI_VECTORS else as_vector)(raw.get(n), text_dim, n, key)
        if v is not None:
            vectors[n] = v
    return vectors


def study_point(row: dict, dim: int, now: str, text_dim: int | None = None) -> tuple[str, dict, dict]:
    """A study row -> (point id, named vectors, payload), checked against the contract. text_dim: size
    of the collection's report-text vectors (None: it has none, and such vectors in the row are dropped)."""
    key = row.get("study_key")
    if not key or not isinstance(key, str):
        raise PayloadError(f"study row without a string 'study_key': {sorted(row)}.")
    bad = [f for f in FORBIDDEN if f in row]
    if bad:
        raise PayloadError(f"study {key!r} carries raw identifiers {bad}; they belong in link.parquet, "
                           "never in the vector store payload. Drop them from the row.")
    vectors = _vectors(row.get("vectors") or {}, key, dim, text_dim)
    if "study" not in vectors:
        raise PayloadError(f"study {key!r} has no 'study' vector; every point needs one.")
    payload = {k: v for k, v in row.items() if k != "vectors"}
    payload["study_date"] = iso_date(payload.get("study_date"))
    payload["manufacturer"] = canonical_vendor(payload.get("manufacturer"))
    payload["views"] = list(payload.get("views") or [])
    payload["labels"] = list(payload.get("labels") or [])
    payload["report_findings"] = list(payload.get("report_findings") or [])
    payload.setdefault("label_scores", {})
    payload.setdefault("indexed_at", now)
    return point_id(key), vectors, payload


def model_id(model) -> str:
    """Short fingerprint of a model's projection heads: '<config name>:<12 hex>'. Two checkpoints with the
    same heads embed alike; the frozen text backbone is part of the config name, and a text pipeline that
    drops negated scopes (config text.negation) is hashed in as well, and so is a measure head
    (model/measures.py): it changes the study vectors, so an index built without it is re-embedded."""
    h = hashlib.sha256()
    negation = getattr(getattr(model.cfg, "text", None), "negation", "keep")
    if negation != "keep":
        h.update(f"text.negation={negation}".encode())
    for name, t in sorted(model.state_dict().items()):
        if name.startswith(("txt_proj.", "vid_proj.", "measure_proj.")):
            h.update(name.encode())
            h.update(t.detach().cpu().float().numpy().tobytes())
    return f"{model.cfg.name}:{h.hexdigest()[:12]}"

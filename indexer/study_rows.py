"""The rows a prepare run writes and what it returns, shared by the DICOM path (prepare.py) and the ACDC
NIfTI path (nifti.py): one studies.parquet row per study (keys and coarse metadata, never raw identifiers),
the synthetic archives' ground truth, and `PrepareResult`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from cmr_search.indexer.records import QARecord


@dataclass
class PrepareResult:
    out: Path
    studies: pl.DataFrame      # the merged studies table
    n_assembled: int           # studies (re)built this run
    n_skipped: int             # unchanged studies kept from an earlier run (their arrays not rebuilt)
    n_failed: int              # studies that could not be cached this run
    n_errors: int              # rows of errors.parquet
    seconds: float
    n_measured: int = 0        # studies segmented and measured this run (built, or cached ones measured)


def month(date: str) -> str | None:
    """'YYYYMMDD' -> 'YYYY-MM'; None when the year or month is not valid."""
    d = (date or "").strip().replace("-", "")
    if len(d) < 6 or not d[:6].isdigit() or not 1 <= int(d[4:6]) <= 12 or int(d[:4]) < 1900:
        return None
    return f"{d[:4]}-{d[4:6]}"


TRUTH_COLUMNS = ("label", "split", "finding_labels")   # ground truth, synthetic archives only


def find_truth(source_dir: str, archive: str) -> dict:
    """Ground truth of a SYNTHETIC study from the nearest study.json at or above source_dir:
    label (class), split (wording split train/test), finding_labels (JSON of binary findings).
    All None for a real archive (no study.json)."""
    none = dict.fromkeys(TRUTH_COLUMNS)
    folder, root = Path(source_dir).resolve(), Path(archive).resolve()
    for p in (folder, *folder.parents):
        f = p / "study.json"
        if f.exists():
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                return none
            labels = (rec.get("findings") or {}).get("labels")
            return {"label": rec.get("label"), "split": rec.get("split"),
                    "finding_labels": json.dumps(labels, sort_keys=True) if labels else None}
        if p == root or root not in p.parents:
            return none
    return none


def study_row(key: str, pkey: str, meta: dict, views: dict, qa: QARecord, impression: str,
              truth: dict, fp: str, rel: str) -> dict:
    """One studies.parquet row (keys and coarse metadata only, never raw identifiers)."""
    return {"study_key": key, "patient_key": pkey, "age": meta.get("age"), "sex": meta.get("sex") or None,
            "study_date": meta.get("study_date"), "manufacturer": meta.get("manufacturer") or None,
            "model_name": meta.get("model_name") or None, "field_strength": meta.get("field_strength"),
            "views": list(views), "n_frames": qa.frames.get("cine_sax", max(qa.frames.values(), default=0)),
            "sax_slices": qa.frames.get("cine_sax_slices"), "impression": impression or None,
            **truth, "qa": json.dumps(asdict(qa)), "source_fingerprint": fp, "array_path": rel}

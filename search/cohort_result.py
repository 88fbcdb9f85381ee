"""What a cohort definition gives back (search/cohort_definition.py): its studies and patients, their
readable scores, the attrition table; exported at study or patient level, saved, compared.

    res = definition.run(client)
    res.attrition                         # polars: step, kind, criterion, studies, patients (exact counts)
    res.attrition_shown()                 # the same with counts 1-10 shown as "<11" (small-cell rule)
    res.frame("patient")                  # one row per patient (patient_key, studies, dates, best scores)
    res.export("x.parquet", level="study")   # + x.attrition.csv beside it (suppressed counts)
    res.save("x.result.json"); CohortResult.load("x.result.json")
    compare(a, b, "difference", level="patient")   # union | intersection | difference -> CohortResult

Scores are the semantic criteria's cosines, named by their space (image_cosine, report_cosine): null for a
study that entered by another branch of an OR. Never fused-rank numbers.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from . import audit
from .cohort import _flat
from .errors import CohortDefinitionError, QueryError
from .private_files import write_private
from .results import to_frame
from .safe_csv import write_csv, write_table

RESULT_FORMAT = "cmr-search/cohort-result-1"
SMALL_COUNT = 11          # counts from 1 to SMALL_COUNT - 1 are shown as "<11" (the one rule: exports, CLI, workbench)
LEVELS = ("study", "patient")
OPS = ("union", "intersection", "difference")
ATTRITION_SCHEMA = {"step": pl.Int64, "kind": pl.Utf8, "criterion": pl.Utf8, "studies": pl.Int64,
                    "patients": pl.Int64}


def small(n: int) -> str:
    """A count for display or export: '<11' for 1-10 (re-identification risk), the number otherwise."""
    return f"<{SMALL_COUNT}" if 0 < n < SMALL_COUNT else str(n)


@dataclass
class CohortResult:
    definition: dict                              # the definition as run (CohortDefinition.to_dict())
    keys: list[str]                               # the studies, ordered by patient, date, key
    patients: dict[str, str | None]               # study key -> patient key (None: a study without one)
    dates: dict[str, str | None]                  # study key -> study date
    scores: dict[str, dict[str, float]]           # score column -> {study key: cosine}
    attrition: pl.DataFrame                       # step, kind, criterion, studies, patients (exact)
    index: dict = field(default_factory=dict)     # Store.info() of the index it ran on
    model_id: str | None = None                   # the query model, when a text criterion was encoded
    created: str = ""                             # when it ran (UTC, ISO)
    store: object | None = field(default=None, repr=False)   # the store it ran on (payload fetch)

    # ---- counts -----------------------------------------------------------------------------------
    @property
    def patient_keys(self) -> list[str]:
        """Distinct patients, sorted (a study without a patient key counts as its own patient)."""
        return sorted({_patient(self, k) for k in self.keys})

    def __len__(self) -> int:
        return len(self.keys)

    def attrition_shown(self) -> pl.DataFrame:
        """The attrition table with small cells suppressed: counts as text, 1-10 as '<11'."""
        return self.attrition.with_columns(pl.col("studies").map_elements(small, return_dtype=pl.Utf8),
                                           pl.col("patients").map_elements(small, return_dtype=pl.Utf8))

    # ---- rows -------------------------------------------------------------------------------------
    def frame(self, level: str = "study", payload: bool = True) -> pl.DataFrame:
        """Study level: study_key, patient_key, study_date, the score columns (then, with `payload` and the
        store at hand, the payload fields of search results). Patient level: patient_key, studies (count),
        study_keys, first_date, last_date, the best score of each column."""
        _check(level, LEVELS, "level")
        cols = {"study_key": self.keys, "patient_key": [self.patients.get(k) for k in self.keys],
                "study_date": [self.dates.get(k) for k in self.keys]}
        for col, sc in self.scores.items():
            cols[col] = [sc.get(k) for k in self.keys]
        base = pl.DataFrame(cols, schema={"study_key": pl.Utf8, "patient_key": pl.Utf8, "study_date": pl.Utf8,
                                          **{c: pl.Float64 for c in self.scores}})
        if level == "patient":
            pid = [_patient(self, k) for k in self.keys]
            return (base.with_columns(pl.Series("patient_key", pid, pl.Utf8))
                    .group_by("patient_key", maintain_order=True)
                    .agg(pl.len().alias("studies"), pl.col("study_key").alias("study_keys"),
                         pl.col("study_date").min().alias("first_date"), pl.col("study_date").max().alias("last_date"),
                         *[pl.col(c).max() for c in self.scores])
                    .sort("patient_key"))
        if not payload or self.store is None or not self.keys:
            return base
        extra = to_frame(self.store.get(self.keys)).drop("score", "patient_key", "study_date")
        return base.join(extra, on="study_key", how="left", maintain_order="left")

    def export(self, path: str | Path, level: str = "study") -> Path:
        """Write the rows at `level` to .csv or .parquet and the attrition table (small cells suppressed)
        to <stem>.attrition.csv beside it (new files 0600, CSV formula cells neutralised: safe_csv);
        returns the path."""
        path = Path(path)
        if path.suffix not in (".csv", ".parquet"):
            raise QueryError(f"cohort export to {path.name}: use a .csv or .parquet file name.")
        frame = self.frame(level)
        write_table(frame if path.suffix == ".parquet" else _flat(frame), path)
        write_csv(self.attrition_shown(), attrition_path(path))
        audit.record(self.store, "export", **audit.export_fields(
            {**self.definition, "index": self.index, "model_id": self.model_id}, rows=frame.height, file=path))
        return path

    # ---- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """The result as JSON: its definition, the index and model it ran on, keys, patients, scores,
        attrition (a new file 0600). `cmr cohort run`/`compare` and CohortDefinition.load read it back."""
        path = Path(path)
        write_private(path, json.dumps({
            "format": RESULT_FORMAT, "definition": self.definition, "index": self.index, "model_id": self.model_id,
            "created": self.created, "keys": self.keys, "patients": [self.patients.get(k) for k in self.keys],
            "dates": [self.dates.get(k) for k in self.keys], "scores": self.scores,
            "attrition": self.attrition.to_dicts()}, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, d: dict | None = None) -> "CohortResult":
        d = d if d is not None else json.loads(Path(path).read_text())
        try:
            keys = list(d["keys"])
            if d.get("format") != RESULT_FORMAT or not all(isinstance(k, str) for k in keys):
                raise ValueError
            return cls(d["definition"], keys, dict(zip(keys, d["patients"])), dict(zip(keys, d["dates"])),
                       {c: dict(v) for c, v in d["scores"].items()},
                       pl.DataFrame(d["attrition"], schema=ATTRITION_SCHEMA), d.get("index") or {},
                       d.get("model_id"), d.get("created", ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CohortDefinitionError(f"{path}: not a saved cohort result ({RESULT_FORMAT}); save one with "
                                        "`cmr cohort run FILE --out x.csv` (x.result.json).") from None


def attrition_path(path: Path) -> Path:
    return path.with_name(path.stem + ".attrition.csv")


def result_path(path: Path) -> Path:
    return path.with_name(path.stem + ".result.json")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def ordered(keys, patients: dict, dates: dict) -> list[str]:
    """Study keys by patient, then date, then key (the result order)."""
    return sorted(keys, key=lambda k: (patients.get(k) or k, dates.get(k) or "", k))


def compare(a: CohortResult, b: CohortResult, op: str, level: str = "study") -> CohortResult:
    """union | intersection | difference (A minus B) of two results, by study key or by patient. At patient
    level the studies kept are those of A and B whose patient is in the combined set."""
    _check(op, OPS, "op")
    _check(level, LEVELS, "level")
    patients, dates = {**b.patients, **a.patients}, {**b.dates, **a.dates}
    if level == "study":
        sa, sb = set(a.keys), set(b.keys)
        keys = sa | sb if op == "union" else sa & sb if op == "intersection" else sa - sb
    else:
        pa, pb = set(a.patient_keys), set(b.patient_keys)
        kept = pa | pb if op == "union" else pa & pb if op == "intersection" else pa - pb
        pool = set(a.keys) | (set(b.keys) if op != "difference" else set())
        keys = {k for k in pool if (patients.get(k) or k) in kept}
    scores: dict[str, dict[str, float]] = {}
    for r, tag in ((a, "a"), (b, "b")):
        for col, sc in r.scores.items():
            name = col if col not in scores else f"{col}_{tag}"
            scores[name] = {k: v for k, v in sc.items() if k in keys}
    out = CohortResult({"compare": op, "level": level, "a": a.definition, "b": b.definition}, [], patients, dates,
                       scores, pl.DataFrame(schema=ATTRITION_SCHEMA), a.index, a.model_id, now(), a.store or b.store)
    out.keys = ordered(keys, patients, dates)
    out.patients = {k: patients.get(k) for k in out.keys}
    out.dates = {k: dates.get(k) for k in out.keys}
    rows = [(1, "cohort", f"A: {a.definition.get('name', 'A')}", len(a.keys), len(a.patient_keys)),
            (2, "cohort", f"B: {b.definition.get('name', 'B')}", len(b.keys), len(b.patient_keys)),
            (3, op, f"A {op} B by {level}", len(out.keys), len(out.patient_keys))]
    out.attrition = pl.DataFrame(rows, schema=ATTRITION_SCHEMA, orient="row")
    return out


def _patient(r: CohortResult, key: str) -> str:
    return r.patients.get(key) or key


def _check(value, choices, what: str) -> None:
    if value not in choices:
        raise QueryError(f"{what}={value!r}: choose one of {', '.join(choices)}.")

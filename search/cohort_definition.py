"""Cohorts defined by criteria (issue #21): a saved definition, run exactly on the index, counted by patient.

    from cmr_search.search.criteria import Report, Semantic, Where
    d = CohortDefinition(name="HFrEF with LGE, not amyloid",
                         inclusion=[Where.parse("age=40..80"), Where.parse("lvef<40"), Report("LGE")],
                         exclusion=[Report("amyloid", status=["affirmed", "uncertain"])],
                         per_patient="first")
    res = d.run(client)           # a Client (text criteria) or a Store -> CohortResult (search/cohort_result.py)
    res.attrition                 # all studies, then each inclusion and exclusion step: studies and patients
    d.save("hfref.cohort.json"); CohortDefinition.load("hfref.cohort.json").run(client)

A study is in the cohort when it meets every inclusion criterion and no exclusion criterion (each criterion
may itself be an AND / OR / NOT of others: search/criteria.py); with `per_patient` one study per patient is
kept: first or last by study date, best by the first semantic criterion's score. Nothing is top-k: every
count is exact. The file form is JSON (YAML too where pyyaml is installed), checked against the JSON Schema
search/schemas/cohort-definition.schema.json (search/spec_files.py):

    {"format": "cmr-search/cohort-definition-1", "name": "...", "per_patient": "first",
     "inclusion": [{"filter": ["age=40..80"]}, {"filter": ["lvef<40"]}, {"report": "LGE", "status": ["affirmed"]}],
     "exclusion": [{"report": "amyloid", "status": ["affirmed", "uncertain"]}]}

A definition loaded from a saved result (CohortResult.save) carries the index and model it ran on; running
it on a changed index warns (search.cohort.CohortDriftWarning).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from . import audit
from .cohort import CohortDriftWarning
from .cohort_result import ATTRITION_SCHEMA, RESULT_FORMAT, CohortResult, now, ordered
from .criteria import Evaluator, Semantic, criterion_from, semantic_criteria
from .errors import CohortDefinitionError, QueryError
from .spec_files import first, problems, read_spec

FORMAT = "cmr-search/cohort-definition-1"
PER_PATIENT = ("first", "last", "best")
SCHEMA = "cohort-definition"        # search/schemas/cohort-definition.schema.json: the file form
DRIFT_FIELDS = ("points", "dim", "report_text_dim", "model_ids")


@dataclass
class CohortDefinition:
    inclusion: list                               # criteria every study must meet, in attrition order
    exclusion: list = field(default_factory=list)   # criteria that remove a study, in attrition order
    per_patient: str | None = None                # first | last (by study_date) | best (semantic score) | None: all
    name: str = "cohort"                          # a label for tables and files
    index: dict | None = None                     # Store.info() it last ran on (drift check); None: not recorded
    model_id: str | None = None                   # the query model it last ran with (text criteria only)

    def __post_init__(self):
        if self.per_patient not in (None, *PER_PATIENT):
            raise QueryError(f"per_patient={self.per_patient!r}: choose one of {', '.join(PER_PATIENT)} (or None).")
        if self.per_patient == "best" and not self._semantic():
            raise QueryError("per_patient='best' picks by the semantic score: add a semantic inclusion criterion "
                             "(text with min_score), or use first or last.")
        columns = [s.score_column for s in self._semantic()]
        if len(set(columns)) < len(columns):
            raise QueryError(f"two semantic criteria share the score column {columns}: give one a 'column' name.")

    def _semantic(self) -> list[Semantic]:
        return [s for c in self.inclusion for s in semantic_criteria(c)]

    # ---- the file form ----------------------------------------------------------------------------
    def to_dict(self, recorded: bool = True) -> dict:
        """The file form; `recorded`: with the index and model it last ran on, where known."""
        d = {"format": FORMAT, "name": self.name, "inclusion": [c.to_dict() for c in self.inclusion],
             "exclusion": [c.to_dict() for c in self.exclusion], "per_patient": self.per_patient}
        if recorded and self.index is not None:
            d.update(index=self.index, model_id=self.model_id)
        return d

    @classmethod
    def from_dict(cls, d, source: str = "cohort definition") -> "CohortDefinition":
        """Checked: CohortDefinitionError '<source>: <where>: <problem>' for the first problem found."""
        try:
            return cls._from_dict(d)
        except (CohortDefinitionError, QueryError) as e:
            raise CohortDefinitionError(f"{source}: {e}") from None

    @classmethod
    def _from_dict(cls, d, prefix: str = "") -> "CohortDefinition":
        """Checked against search/schemas/cohort-definition.schema.json: the definition's own keys first,
        then each criterion by criterion_from (its messages, the same paths), then the rest of the schema."""
        if isinstance(d, dict) and d.get("format") == RESULT_FORMAT:    # a saved result: its definition
            inner = d.get("definition")
            if not isinstance(inner, dict) or "compare" in inner:
                raise CohortDefinitionError("a saved result without a re-runnable definition (a comparison?).")
            return cls._from_dict({**inner, "index": d.get("index"), "model_id": d.get("model_id")}, "definition")
        errors = problems(d, SCHEMA)
        outer = [e for e in errors if len(e.absolute_path) <= 1]
        if outer:
            raise CohortDefinitionError(first(outer, prefix))
        inc = [criterion_from(c, _at(prefix, f"inclusion[{i}]")) for i, c in enumerate(d["inclusion"])]
        exc = [criterion_from(c, _at(prefix, f"exclusion[{i}]")) for i, c in enumerate(d.get("exclusion", []))]
        if errors:
            raise CohortDefinitionError(first(errors, prefix))
        return cls(inc, exc, d.get("per_patient"), d.get("name", "cohort"), d.get("index"), d.get("model_id"))

    @classmethod
    def load(cls, path: str | Path) -> "CohortDefinition":
        """A cohort file (JSON; .yaml/.yml where pyyaml is installed) or a saved result -> definition."""
        return cls.from_dict(read_file(path), str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    # ---- running ----------------------------------------------------------------------------------
    def run(self, target, per_patient: str | None = None, count_all: bool = False) -> CohortResult:
        """Evaluate on `target` (a search.Client; a search.Store when no criterion is text), exactly: each
        step is evaluated among the studies the steps before it left (the engine reads no others).
        `per_patient` overrides the definition's. `count_all`: also count the patients of the whole index for
        the first row (a pass over every study: ~1.5 s per 100,000, bench/cohort.py; by default that cell
        is null and the row gives the index's study count). Appended to the audit trail (search/audit.py).
        Warns (CohortDriftWarning) when the definition records an index or model that differs from this one."""
        per = per_patient if per_patient is not None else self.per_patient
        if per is not None and per != self.per_patient:
            CohortDefinition(self.inclusion, self.exclusion, per, self.name)      # checks it
        ev = Evaluator(target)
        info = ev.store.info()
        model = self._model_id(ev)
        self._check_drift(info, model)
        everyone = ev.all() if count_all or not self.inclusion else None
        rows = [("all", "all studies in the index", everyone)]
        current, scores = (set(everyone) if everyone is not None else None), {}
        for c in self.inclusion:
            m = c.evaluate(ev, current)
            current = m.keys
            for col, sc in m.scores.items():
                scores.setdefault(col, {}).update(sc)
            rows.append(("inclusion", c.describe(), set(current)))
        for c in self.exclusion:
            current = current - c.evaluate(ev, current).keys
            rows.append(("exclusion", c.describe(), set(current)))
        if per is not None:
            current = pick(current, ev.meta, scores, per, self._semantic())
            rows.append(("per patient", f"one study per patient ({per})", set(current)))
        patients = {k: ev.meta[k][0] for k in current}
        dates = {k: ev.meta[k][1] for k in current}
        table = [(i, kind, what, len(keys), len({ev.meta[k][0] or k for k in keys})) if keys is not None
                 else (i, kind, what, info["points"], None) for i, (kind, what, keys) in enumerate(rows)]
        result = CohortResult(self.to_dict(recorded=False),
                              ordered(current, patients, dates), patients, dates,
                              {c: {k: v for k, v in sc.items() if k in current} for c, sc in scores.items()},
                              pl.DataFrame(table, schema=ATTRITION_SCHEMA, orient="row"), info, model, now(), ev.store)
        audit.record(target, "cohort_run", criteria=self.to_dict(recorded=False), results=len(result.keys),
                     collection=info.get("collection"), backend=info.get("backend"), model_id=model)
        return result

    def _model_id(self, ev: Evaluator) -> str | None:
        texts = [s for c in (*self.inclusion, *self.exclusion) for s in semantic_criteria(c) if s.vector is None]
        return ev.client.text_encoder.model_id if texts and ev.client is not None else None

    def _check_drift(self, info: dict, model: str | None) -> None:
        if self.index is None:
            return
        changed = [f for f in DRIFT_FIELDS if info.get(f) != self.index.get(f)]
        if model is not None and self.model_id is not None and model != self.model_id:
            changed.append("model")
        if changed:
            warnings.warn(f"cohort {self.name!r} run on a changed index ({', '.join(changed)}): its patients may "
                          "differ from the recorded run.", CohortDriftWarning, stacklevel=3)


def pick(keys: set[str], meta: dict, scores: dict, how: str, semantic: list[Semantic]) -> set[str]:
    """One study per patient: first or last by study date, best by the first semantic criterion's score;
    ties by study key. A study without a patient key stands alone."""
    col = semantic[0].score_column if semantic else None
    best: dict[str, tuple] = {}
    for k in keys:
        patient, date = meta[k][0] or k, meta[k][1] or ""
        if how == "best":
            rank = (-scores.get(col, {}).get(k, -2.0), date, k)
        elif how == "first":
            rank = (date or "9999", k)
        else:
            rank = (_negated(date), k)
        if patient not in best or rank < best[patient][0]:
            best[patient] = (rank, k)
    return {k for _, k in best.values()}


def _negated(date: str) -> tuple:
    """A sort key that puts the latest ISO date first (missing dates last)."""
    return (0, tuple(-ord(c) for c in date)) if date else (1, ())


def read_file(path: str | Path):
    """The parsed content of a cohort file; CohortDefinitionError '<path>: <problem>' (missing, not JSON/YAML
    with the position): search/spec_files.py."""
    return read_spec(path)


def _at(prefix: str, where: str) -> str:
    return f"{prefix}.{where}" if prefix else where


def read_cohort(path: str | Path) -> "CohortResult | CohortDefinition":
    """A saved result as it is, or a checked cohort definition (what `cmr cohort compare` takes)."""
    d = read_file(path)
    if isinstance(d, dict) and d.get("format") == RESULT_FORMAT:
        return CohortResult.load(path, d)
    return CohortDefinition.from_dict(d, str(path))


def load_result(path: str | Path, target=None) -> CohortResult:
    """A saved result, or a cohort file run on `target` (a Client or Store)."""
    found = read_cohort(path)
    if isinstance(found, CohortResult):
        return found
    if target is None:
        raise QueryError(f"{path} is a cohort definition: it needs an index to run on.")
    return found.run(target)

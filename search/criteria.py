"""Cohort criteria: each one is an EXACT set of studies, evaluated by the store engine (never top-k).

    Semantic("amyloid LGE pattern", mode="image", min_score=0.25)  # every study with cosine >= 0.25
    Report("HOCM")                                  # report_findings HCM:affirmed (synonyms: concept_of)
    Report("HCM", not_status=["negated", "family"])  # any mention but a negated or a relative's one
    Where.parse(["age=40..80", "lvef<40"])          # Filter fields: demographics, measurements, views, ...
    All([...]), AnyOf([...]), Not(c)                # AND / OR / NOT
    criterion_from({"report": "LGE", "status": ["affirmed"]})   # the JSON form of a cohort file

A semantic criterion scores with the engine's exact search above a cut-off (Store.above: brute force,
unquantized, paged); the others are payload filters read through Store.scroll. Scores are cosines (-1..1)
named by their space: `image_cosine` (the `study`/`cine`/`lge` vector against the text's study-space
vector) or `report_cosine` (`report_text`, the all-MiniLM report space). search/cohort_definition.py
combines criteria into inclusion and exclusion steps.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

from cmr_search.model.report_context import RULES, STATUSES

from .collection import VIEWS
from .errors import CohortDefinitionError, QueryError, SearchError
from .filters import Filter

SELECT = ["study_key", "patient_key", "study_date"]   # the payload a criterion reads of each study
BATCH = 4096                                          # scroll page size
MODES = ("image", "report")
KINDS = ("text", "vector", "report", "filter", "all", "any", "not")   # the key that says a criterion's kind
OPTIONS = {"semantic": ("mode", "min_score", "view", "column", "name"), "report": ("status", "not_status", "name"),
           "filter": ("name",), "all": ("name",), "any": ("name",), "not": ("name",)}


# ---- concept sets ------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _target_rules() -> tuple[dict[str, str], list[dict]]:
    """({phrase: concept} of the categories and literals, the rules) of model/rules/cmr_context.json."""
    rules = json.loads(RULES.read_text())["target_rules"]
    names: dict[str, str] = {}
    for r in rules:
        names[r["category"].lower().replace("_", " ")] = r["category"]
    for r in rules:
        names.setdefault(" ".join(r["literal"].lower().split()), r["category"])
    return names, rules


def concepts() -> list[str]:
    """Every concept set (the CONCEPT part of report_findings keys), sorted."""
    return sorted(set(_target_rules()[0].values()))


def concept_of(term: str) -> str:
    """A report term -> its concept set: the category itself ('hcm'), a literal ('hypertrophic cardiomyopathy')
    or any phrase its token patterns match ('HOCM', 'cardiac amyloidosis'). An unknown term raises
    QueryError listing the concepts; one that two concepts match raises naming both."""
    if not isinstance(term, str) or not term.strip():
        raise QueryError(f"report term {term!r}: expected a word or phrase, e.g. 'LGE' or 'HOCM'.")
    names, rules = _target_rules()
    t = " ".join(term.lower().replace("_", " ").split())
    if t in names:
        return names[t]
    found = sorted({r["category"] for r in rules if r.get("pattern") and _match(r["pattern"], t.split())})
    if len(found) == 1:
        return found[0]
    if found:
        raise QueryError(f"report term {term!r} is ambiguous: it names {' and '.join(found)}; use one of those.")
    raise QueryError(f"report term {term!r} is not in any concept set; known concepts: {', '.join(concepts())}.")


def _match(pattern: list[dict], words: list[str]) -> bool:
    """spaCy Matcher semantics on whole phrases: LOWER (a word or IN a list), OP ?, *, + or exactly one."""
    if not pattern:
        return not words
    spec, rest = pattern[0], pattern[1:]
    want = spec.get("LOWER")
    ok = (lambda w: w in want["IN"]) if isinstance(want, dict) else (lambda w: w == want)
    op = spec.get("OP")
    if op in ("?", "*") and _match(rest, words):
        return True
    if not words or not ok(words[0]):
        return False
    return _match(rest, words[1:]) or (op in ("*", "+") and _match(pattern, words[1:]))


# ---- evaluation --------------------------------------------------------------------------------------
@dataclass
class Matches:
    """A criterion's exact answer (within the `among` it was evaluated in: evaluate(ev, among))."""
    keys: set[str]                                              # the studies that meet it
    scores: dict[str, dict[str, float]] = field(default_factory=dict)   # score column -> {study key: cosine}


class Evaluator:
    """The store a definition runs on (and the client that encodes text), with what it read of each study."""

    def __init__(self, target):
        """`target`: a search.Client (text criteria need its encoders) or a search.Store."""
        self.client = target if hasattr(target, "encode_query") else None
        self.store = target.store if self.client is not None else target
        self.meta: dict[str, tuple[str | None, str | None]] = {}   # study key -> (patient_key, study_date)
        self.ids: dict[str, str] = {}                               # study key -> point id (no re-hashing)
        self._all: set[str] | None = None

    def scroll(self, filters: Filter | None, among: set[str] | None = None) -> set[str]:
        """The studies matching `filters`, among `among` (None: the whole index): the engine reads no other."""
        if among is not None and not among:
            return set()
        out = set()
        for h in self.store.scroll(filters, batch=BATCH, with_payload=SELECT, among=self._among(among)):
            self._note(h)
            out.add(h.key)
        return out

    def all(self) -> set[str]:
        """Every study of the index (read once)."""
        if self._all is None:
            self._all = self.scroll(None)
        return self._all

    def above(self, vector, min_score: float, using: str, among: set[str] | None = None) -> dict[str, float]:
        if among is not None and not among:
            return {}
        out = {}
        for h in self.store.above(vector, min_score, using, with_payload=SELECT, among=self._among(among)):
            self._note(h)
            out[h.key] = h.score
        return out

    def encode(self, text: str, mode: str):
        if self.client is None:
            raise QueryError(f"the criterion {text!r} is text: run the cohort on a client (connect(...)) that "
                             "can encode it, or give the criterion a vector.")
        return self.client.encode_query(text) if mode == "image" else self.client.encode_report_query(text)

    def _among(self, among: set[str] | None) -> dict[str, str] | set[str] | None:
        """`among` for the store: None for the whole index; {key: point id} where every id is known."""
        if among is None or (self._all is not None and len(among) == len(self._all)):
            return None
        return {k: self.ids[k] for k in among} if all(k in self.ids for k in among) else among

    def _note(self, h) -> None:
        if h.key not in self.meta:
            self.meta[h.key] = (h.payload.get("patient_key"), h.payload.get("study_date"))
            self.ids[h.key] = h.id


# ---- the criteria ------------------------------------------------------------------------------------
@dataclass
class Semantic:
    """Studies whose image or report vector is at least `min_score` (cosine) from a text (or a vector)."""
    text: str | None                 # what to look for; None when `vector` is given
    min_score: float                 # the cut-off, a cosine in -1..1 (every study at or above it is in)
    mode: str = "image"              # image: the `view` vector vs the text's study-space vector; report: report_text
    view: str = "study"              # image mode: study | cine | lge
    vector: list[float] | None = field(default=None, repr=False)   # a query vector instead of text
    column: str | None = None        # the score column (default image_cosine / report_cosine)
    name: str | None = None          # the label of its attrition step (default: describe())

    @property
    def score_column(self) -> str:
        return self.column or f"{self.mode}_cosine"

    def evaluate(self, ev: Evaluator, among: set[str] | None = None) -> Matches:
        vec = self.vector if self.vector is not None else ev.encode(self.text, self.mode)
        if self.mode == "report" and not ev.store.has_report_text:
            raise QueryError(f"{ev.store.where} has no report_text vectors (indexed before report-text search): "
                             "re-index with `cmr index --rebuild`, or use mode image.")
        scores = ev.above(vec, self.min_score, self.view if self.mode == "image" else "report_text", among)
        return Matches(set(scores), {self.score_column: scores})

    def describe(self) -> str:
        what = repr(self.text) if self.text is not None else "a vector"
        return self.name or f"{self.score_column} >= {self.min_score:g} for {what}"

    def to_dict(self) -> dict:
        d = {k: v for k, v in (("text", self.text), ("vector", self.vector)) if v is not None}
        if self.vector is not None:
            d["vector"] = [float(x) for x in self.vector]
        d.update(mode=self.mode, min_score=self.min_score)
        d.update({k: v for k, v in (("view", self.view if self.view != "study" else None),
                                    ("column", self.column), ("name", self.name)) if v is not None})
        return d


@dataclass
class Report:
    """Studies whose report names a concept with one of the given statuses (negation- and uncertainty-aware,
    model/report_context.py), read from the `report_findings` payload keys ('LGE:affirmed')."""
    term: str                                    # as given: a concept or any synonym ('HOCM')
    status: list[str] | None = None              # statuses that count (default: affirmed only)
    not_status: list[str] | None = None          # or: every status but these
    name: str | None = None                      # the label of its attrition step

    def __post_init__(self):
        self.concept = concept_of(self.term)
        for what in ("status", "not_status"):
            v = getattr(self, what)
            if isinstance(v, str):
                setattr(self, what, v := [v])
            if v is not None and (not isinstance(v, list) or not all(s in STATUSES for s in v)):
                raise QueryError(f"report {self.term!r}: {what}={v!r}: expected a list of {', '.join(STATUSES)}.")
        if self.status is not None and self.not_status is not None:
            raise QueryError(f"report {self.term!r}: give status or not_status, not both.")

    @property
    def statuses(self) -> list[str]:
        if self.not_status is not None:
            return [s for s in STATUSES if s not in self.not_status]
        return list(self.status) if self.status is not None else ["affirmed"]

    def evaluate(self, ev: Evaluator, among: set[str] | None = None) -> Matches:
        keys: set[str] = set()
        for s in self.statuses:                  # Filter(findings=[...]) needs every key: one scroll per status
            keys |= ev.scroll(Filter(findings=[f"{self.concept}:{s}"]), among)
        return Matches(keys)

    def describe(self) -> str:
        return self.name or f"report {self.concept} {'|'.join(self.statuses)}"

    def to_dict(self) -> dict:
        d = {"report": self.term}
        d.update({k: v for k, v in (("status", self.status), ("not_status", self.not_status),
                                    ("name", self.name)) if v is not None})
        return d


@dataclass
class Where:
    """Studies matching payload filters (search.Filter: age, sex, date, vendor, field_strength, views, labels,
    findings, the measurements, seg_quality), evaluated by the engine."""
    filter: Filter                               # the payload filter
    spec: list[str] | dict | None = None         # as written (['lvef<40'] or {'age': [40, 80]}), for the file
    name: str | None = None                      # the label of its attrition step

    @classmethod
    def parse(cls, items: list[str] | str, name: str | None = None) -> "Where":
        items = [items] if isinstance(items, str) else list(items)
        return cls(Filter.parse(items), items, name)

    def evaluate(self, ev: Evaluator, among: set[str] | None = None) -> Matches:
        return Matches(ev.scroll(self.filter, among))

    def describe(self) -> str:
        if self.name:
            return self.name
        if isinstance(self.spec, list):
            return ", ".join(self.spec)
        return ", ".join(f"{k}={v}" for k, v in self.filter.to_dict().items())

    def to_dict(self) -> dict:
        d = {"filter": self.spec if self.spec is not None else self.filter.to_dict()}
        return {**d, "name": self.name} if self.name else d


@dataclass
class All:
    """AND of criteria."""
    items: list                                  # the criteria
    name: str | None = None

    def evaluate(self, ev: Evaluator, among: set[str] | None = None) -> Matches:
        parts = []
        for c in self.items:                     # each narrows the next: the engine reads fewer studies
            parts.append(c.evaluate(ev, among))
            among = parts[-1].keys
        keys = among if among is not None else ev.all()
        return Matches(keys, _merged(parts, keys))

    def describe(self) -> str:
        return self.name or "(" + " AND ".join(c.describe() for c in self.items) + ")"

    def to_dict(self) -> dict:
        return _named({"all": [c.to_dict() for c in self.items]}, self.name)


@dataclass
class AnyOf:
    """OR of criteria."""
    items: list                                  # the criteria
    name: str | None = None

    def evaluate(self, ev: Evaluator, among: set[str] | None = None) -> Matches:
        parts = [c.evaluate(ev, among) for c in self.items]
        keys = set().union(*(p.keys for p in parts))
        return Matches(keys, _merged(parts, keys))

    def describe(self) -> str:
        return self.name or "(" + " OR ".join(c.describe() for c in self.items) + ")"

    def to_dict(self) -> dict:
        return _named({"any": [c.to_dict() for c in self.items]}, self.name)


@dataclass
class Not:
    """Every study that does not meet a criterion."""
    item: object                                 # the criterion
    name: str | None = None

    def evaluate(self, ev: Evaluator, among: set[str] | None = None) -> Matches:
        within = among if among is not None else ev.all()
        return Matches(within - self.item.evaluate(ev, within).keys)

    def describe(self) -> str:
        return self.name or f"NOT {self.item.describe()}"

    def to_dict(self) -> dict:
        return _named({"not": self.item.to_dict()}, self.name)


def _merged(parts: list[Matches], keys: set[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for p in parts:
        for col, sc in p.scores.items():
            out.setdefault(col, {}).update({k: v for k, v in sc.items() if k in keys})
    return out


def _named(d: dict, name: str | None) -> dict:
    return {**d, "name": name} if name else d


def semantic_criteria(c) -> list[Semantic]:
    """The semantic criteria inside a criterion (depth first)."""
    if isinstance(c, Semantic):
        return [c]
    if isinstance(c, (All, AnyOf)):
        return [s for x in c.items for s in semantic_criteria(x)]
    return semantic_criteria(c.item) if isinstance(c, Not) else []


# ---- parsing: the JSON form ----------------------------------------------------------------------------
def criterion_from(d, where: str = "criterion"):
    """A criterion from its JSON form; CohortDefinitionError naming `where` (e.g. 'inclusion[2]') and the
    problem. A string is a filter item ('lvef<40')."""
    if isinstance(d, str):
        d = {"filter": [d]}
    if not isinstance(d, dict):
        raise CohortDefinitionError(f"{where}: expected an object such as {{\"report\": \"LGE\"}}, "
                                    f"got {type(d).__name__} {str(d)[:60]}.")
    kinds = [k for k in KINDS if k in d]
    if not kinds or (len(kinds) > 1 and set(kinds) != {"text", "vector"}):
        raise CohortDefinitionError(f"{where}: unknown criterion kind (keys {', '.join(map(str, d)) or 'none'}); "
                                    f"a criterion has exactly one of: {', '.join(KINDS)}.")
    kind = "semantic" if kinds[0] in ("text", "vector") else kinds[0]
    extra = [k for k in d if k not in kinds and k not in OPTIONS[kind]]
    if extra:
        raise CohortDefinitionError(f"{where}: unknown key {extra[0]!r} in a {kind} criterion; "
                                    f"known: {', '.join(kinds + list(OPTIONS[kind]))}.")
    name = d.get("name")
    if name is not None and not isinstance(name, str):
        raise CohortDefinitionError(f"{where}: name must be a string, got {name!r}.")
    try:
        return _build(kind, d, where, name)
    except SearchError as e:
        if isinstance(e, CohortDefinitionError):
            raise
        raise CohortDefinitionError(f"{where}: {e}") from None


def _build(kind: str, d: dict, where: str, name):
    if kind in ("all", "any"):
        items = d[kind]
        if not isinstance(items, list) or not items:
            raise CohortDefinitionError(f"{where}: {kind!r} needs a non-empty list of criteria.")
        parts = [criterion_from(x, f"{where}.{kind}[{i}]") for i, x in enumerate(items)]
        return All(parts, name) if kind == "all" else AnyOf(parts, name)
    if kind == "not":
        return Not(criterion_from(d["not"], f"{where}.not"), name)
    if kind == "report":
        return Report(_text(d, "report", where), d.get("status"), d.get("not_status"), name)
    if kind == "filter":
        spec = d["filter"]
        if isinstance(spec, list) and spec and all(isinstance(x, str) for x in spec):
            return Where(Filter.parse(spec), spec, name)
        if isinstance(spec, dict) and spec:
            return Where(Filter.from_dict(spec), spec, name)
        raise CohortDefinitionError(f"{where}: filter must be a list of items (['lvef<40', 'sex=F']) or an "
                                    f"object of Filter fields ({{\"age\": [40, 80]}}), got {spec!r}.")
    return _semantic(d, where, name)


def _semantic(d: dict, where: str, name) -> Semantic:
    if "min_score" not in d:
        raise CohortDefinitionError(f"{where}: a semantic criterion needs min_score (a cosine cut-off in -1..1).")
    score = d["min_score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not -1.0 <= score <= 1.0:
        raise CohortDefinitionError(f"{where}: min_score={score!r}: expected a number in -1..1 (a cosine).")
    mode = d.get("mode", "image")
    if mode not in MODES:
        raise CohortDefinitionError(f"{where}: mode={mode!r}: expected one of {', '.join(MODES)}.")
    view = d.get("view", "study")
    if view not in VIEWS or (mode == "report" and view != "study"):
        raise CohortDefinitionError(f"{where}: view={view!r}: expected one of {', '.join(VIEWS)} (image mode only).")
    column = d.get("column")
    if column is not None and (not isinstance(column, str) or not column.isidentifier()):
        raise CohortDefinitionError(f"{where}: column={column!r}: expected a name such as 'amyloid_cosine'.")
    vector = d.get("vector")
    if vector is not None and (not isinstance(vector, list) or not vector or
                               not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector)):
        raise CohortDefinitionError(f"{where}: vector must be a list of numbers.")
    text = _text(d, "text", where) if "text" in d else None
    return Semantic(text, float(score), mode, view, vector, column, name)


def _text(d: dict, key: str, where: str) -> str:
    v = d[key]
    if not isinstance(v, str) or not v.strip():
        raise CohortDefinitionError(f"{where}: {key} must be a non-empty string, got {v!r}.")
    return v

"""`Filter`: the user's view of payload filters, compiled to neutral conditions that each backend maps.

    Filter(age=(40, 80), sex="F", date=("2019", "2021-06"), vendor="Siemens", field_strength=1.5,
           views=["lge_sax"], labels=["AMYLOID"])
    Filter(lvef=(None, 35), lv_mass=(150, None), max_wall=(13, 20), seg_quality=["good", "check"])
    Filter.parse(["age=40..80", "sex=F", "views=cine_sax,lge_sax"])       # the CLI's --filter key=value
    Filter.parse(["lvef<35", "lv_mass>150", "max_wall=13..20", "rvef>=45"])   # ... or a comparison

Semantics: every given field must hold (AND). `views` = the study has ALL listed views; `findings` = the
report states ALL listed 'CONCEPT:status' keys (model/report_context.py: findings=LGE:affirmed,HCM:family);
`labels`, `sex`,
`vendor` and `seg_quality` = ANY of the listed values; ranges are inclusive, either end may be None
(open). The measurements (search.collection.MEASUREMENTS: lvef, lvedv, lvesv, lv_mass, max_wall, rvef,
rvedv, rvesv and the indexed lvedvi, lvesvi, lv_massi, rvedvi, rvesvi) are ranges; a study without that
measurement (not measured, or not measurable) matches no range on it, whatever the bounds. In a
comparison, `<` and `>` are strict: `lvef<35` is the range (None, the largest float below 35), `lvef<=35`
is (None, 35).

A categorical value no study holds is refused at query time by `check_can_match` (the client calls it):
FilterMatchesNothingError lists the values the index holds (sex=female where it holds F and M), instead
of an empty result. Ranges are never refused (a range may fairly hold no study), except a single
field_strength value, which is a value widened by FIELD_STRENGTH_TOLERANCE.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from cmr_search.model.report_context import STATUSES

from .collection import MEASUREMENTS, canonical_vendor, iso_date
from .errors import FilterMatchesNothingError, FilterValueError, PayloadError, UnknownFilterError

KNOWN = ("age", "sex", "date", "vendor", "field_strength", "views", "labels", "findings", *MEASUREMENTS,
         "seg_quality")
RANGES = ("age", "date", "field_strength", *MEASUREMENTS)       # fields given as (low, high)
NUMERIC = ("age", "field_strength", *MEASUREMENTS)              # fields a comparison (<, <=, >, >=) may bound
_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>|=)(.*)", re.S)
FIELD_STRENGTH_TOLERANCE = 0.05     # tesla: 1.5 matches 1.494 (some scanners write odd values)
FACETED = {"sex": "sex", "manufacturer": "vendor", "labels": "labels", "views": "views",
           "report_findings": "findings",
           "seg_quality": "seg_quality"}      # payload key -> filter field: values checked by check_can_match
FACET_LIMIT = 1_000                 # more distinct values than this: the field is not checked
SCAN_LIMIT = 10_000                 # field_strength values are listed from at most this many studies


@dataclass
class Conditions:
    """Neutral filter: `must` tuples ("any", key, values) | ("range", key, lo, hi) | ("date", key, lo, hi),
    and point ids to exclude. Backends translate this; nothing else does."""
    must: list[tuple] = field(default_factory=list)
    exclude_ids: list[str] = field(default_factory=list)
    only_ids: list[str] | None = None       # the point ids a match must be among (None: any point)

    def __bool__(self) -> bool:
        return bool(self.must or self.exclude_ids) or self.only_ids is not None


class Filter:
    """Payload filter on studies; unknown fields raise with the list of known ones."""

    def __init__(self, **fields):
        for name in fields:
            if name not in KNOWN:
                raise UnknownFilterError(name, KNOWN)
        self.fields = {k: v for k, v in fields.items() if v is not None}
        self.conditions()                       # validate values now, not at query time

    def __repr__(self) -> str:
        return "Filter(" + ", ".join(f"{k}={v!r}" for k, v in self.fields.items()) + ")"

    def __eq__(self, other) -> bool:
        return isinstance(other, Filter) and self.to_dict() == other.to_dict()

    def __and__(self, other: "Filter") -> "Filter":
        return Filter(**{**self.fields, **other.fields})

    # ---- (de)serialisation: cohorts save filters as JSON ----------------------------------------
    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in self.fields.items()}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Filter":
        return cls(**{k: tuple(v) if k in RANGES and isinstance(v, list) else v
                      for k, v in _checked_fields(d or {}).items()})

    @classmethod
    def parse(cls, items: list[str]) -> "Filter":
        """['age=40..80', 'sex=F', 'views=cine_sax,lge_sax', 'date=2019..2020-06', 'lvef<35',
        'lv_mass>150', 'max_wall=13..20'] -> Filter. Two comparisons of one field combine
        ('lvef>20', 'lvef<=35')."""
        fields: dict = {}
        for item in items:
            m = _ITEM.fullmatch(item)
            if not m or not m[3].strip():
                raise FilterValueError(f"filter {item!r} is not key=value or a comparison (e.g. sex=F, "
                                       "age=40..80, lvef<35, lv_mass>150).")
            name, op, value = m[1], m[2], m[3].strip()
            if name not in KNOWN:
                raise UnknownFilterError(name, KNOWN)
            if op == "=":
                fields[name] = _parse_value(name, value)
            else:
                fields[name] = _compare(name, op, value, fields.get(name))
        return cls(**fields)

    # ---- compile ------------------------------------------------------------------------------
    def conditions(self) -> Conditions:
        c = Conditions()
        f = self.fields
        if "age" in f:
            c.must.append(("range", "age", *_bounds("age", f["age"])))
        if "field_strength" in f:
            v = f["field_strength"]
            if not isinstance(v, (tuple, list)):                 # one value: a number, checked
                v = _bounds("field_strength", (v, v))[0]
                v = (v - FIELD_STRENGTH_TOLERANCE, v + FIELD_STRENGTH_TOLERANCE)
            lo, hi = _bounds("field_strength", v)
            c.must.append(("range", "field_strength", lo, hi))
        if "date" in f:
            c.must.append(("date", "study_date", *_date_bounds(f["date"])))
        if "sex" in f:
            c.must.append(("any", "sex", [s.upper() for s in _strings("sex", f["sex"])]))
        if "vendor" in f:
            c.must.append(("any", "manufacturer", [canonical_vendor(s) for s in _strings("vendor", f["vendor"])]))
        if "labels" in f:
            c.must.append(("any", "labels", _strings("labels", f["labels"])))
        if "views" in f:
            for view in _strings("views", f["views"]):
                c.must.append(("any", "views", [view]))
        for key in _finding_keys(f.get("findings")):
            c.must.append(("any", "report_findings", [key]))
        for name in MEASUREMENTS:             # a study without the value (null, absent) matches no range
            if name in f:
                c.must.append(("range", name, *_bounds(name, f[name])))
        if "seg_quality" in f:
            c.must.append(("any", "seg_quality", _strings("seg_quality", f["seg_quality"])))
        return c


def to_filter(filters) -> Filter | None:
    """A Filter, a dict of filter fields or None -> Filter or None; FilterValueError for anything else."""
    if filters is None or isinstance(filters, Filter):
        return filters
    return Filter(**_checked_fields(filters))


def _checked_fields(d) -> dict:
    """d itself when it is a dict of known field names (UnknownFilterError names any other key)."""
    if not isinstance(d, dict):
        raise FilterValueError(f"filters={d!r}: expected a Filter, a dict of filter fields or None, e.g. "
                               "Filter(sex='F') or {'age': (40, 80)}.")
    for name in d:
        if not isinstance(name, str) or name not in KNOWN:
            raise UnknownFilterError(name, KNOWN)
    return d


def as_conditions(filters: "Filter | dict | None", exclude_ids: list[str] = (),
                  only_ids: list[str] | None = None) -> Conditions:
    """Filter, dict of filter fields or None -> Conditions (with ids to exclude, and the ids a match must be
    among: cohort criteria narrowing step by step, search/criteria.py)."""
    filters = to_filter(filters)
    c = filters.conditions() if filters is not None else Conditions()
    c.exclude_ids = list(exclude_ids)
    c.only_ids = None if only_ids is None else list(only_ids)
    return c


def check_can_match(filters: Filter | None, store) -> Filter | None:
    """`filters`, when every categorical value it asks for is held by some study of `store` (a
    search.store.Store: facet, count, scroll); else FilterMatchesNothingError naming the values held.
    An `any` field (sex, vendor, labels, seg_quality) fails when none of its values is held, `views` when
    one view is not (all are required). An empty index, or a field the store cannot facet, is not checked."""
    if filters is None:
        return None
    held: dict[str, dict | None] = {}
    for kind, key, *rest in filters.conditions().must:
        if kind != "any" or key not in FACETED:
            continue
        if key not in held:
            held[key] = _facet(store, key)
            if held[key] is None and key == "report_findings" and store.count() and not _has_findings(store):
                held[key] = {}             # an index built before findings were read: say so, not 0 rows
        if held[key] is not None and not any(v in held[key] for v in rest[0]) and store.count():
            name = FACETED[key]
            given = rest[0] if name in ("views", "findings") else _strings(name, filters.fields[name])
            raise FilterMatchesNothingError(name, given, held[key])
    _check_field_strength(filters, store)
    return filters


def _has_findings(store, sample: int = 200) -> bool:
    """Whether any of the first `sample` studies carries report findings (an older index has none)."""
    return any(h.payload.get("report_findings") for _, h in zip(range(sample), store.scroll()))


def _facet(store, key: str) -> dict | None:
    """{value: studies} of a keyword payload field; None when it cannot be told (too many values, or the
    store cannot facet on it: an older index), so that the field goes unchecked."""
    try:
        pairs = store.facet(key, limit=FACET_LIMIT)
    except Exception:              # a failed courtesy check must never fail the search itself
        return None
    return None if len(pairs) >= FACET_LIMIT else {v: c for v, c in pairs if v not in (None, "")}


def _check_field_strength(filters: Filter, store) -> None:
    """A single field_strength (not a range) that no study is within tolerance of: the values held by up
    to SCAN_LIMIT studies (field_strength is a float field, which the engines do not facet)."""
    v = filters.fields.get("field_strength")
    if v is None or isinstance(v, (tuple, list)) or store.count(Filter(field_strength=v)) or not store.count():
        return
    seen: Counter = Counter()
    for i, hit in enumerate(store.scroll()):
        if i >= SCAN_LIMIT:
            break
        if isinstance(fs := hit.payload.get("field_strength"), (int, float)):
            seen[f"{fs:g}"] += 1
    what = "the index" if store.count() <= SCAN_LIMIT else f"the first {SCAN_LIMIT:,} studies of the index"
    raise FilterMatchesNothingError("field_strength", [f"{float(v):g}"], seen, what)


def _strings(name: str, v) -> list[str]:
    vals = [v] if isinstance(v, str) else list(v) if isinstance(v, (list, tuple, set)) else []
    if not vals or not all(isinstance(x, str) and x and _is_text(x) for x in vals):
        raise FilterValueError(f"filter {name}={v!r}: expected a string or a list of strings.")
    return vals


def _is_text(s: str) -> bool:
    """False for strings with lone surrogates (undecodable bytes from argv): the index cannot hold them."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bounds(name: str, v) -> tuple[float | None, float | None]:
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise FilterValueError(f"filter {name}={v!r}: expected (low, high); use None for an open end.")
    try:
        lo, hi = (None if x is None else float(x) for x in v)
    except (TypeError, ValueError, OverflowError):
        raise FilterValueError(f"filter {name}={v!r}: bounds must be numbers or None.") from None
    if any(x is not None and math.isnan(x) for x in (lo, hi)):      # NaN: the engine panics on it
        raise FilterValueError(f"filter {name}={v!r}: bounds must be numbers or None, not NaN.")
    if lo is not None and hi is not None and lo > hi:
        raise FilterValueError(f"filter {name}={v!r}: low bound is above the high bound.")
    return lo, hi


def _date_bounds(v) -> tuple[str | None, str | None]:
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise FilterValueError(f"filter date={v!r}: expected (from, to), e.g. ('2019', '2020-06-30').")
    try:
        lo, hi = iso_date(v[0]), iso_date(v[1], end=True)
    except PayloadError as e:
        raise FilterValueError(f"filter date: {e}") from None
    if lo and hi and lo > hi:
        raise FilterValueError(f"filter date={v!r}: 'from' is after 'to'.")
    return lo, hi


def _compare(name: str, op: str, s: str, before) -> tuple:
    """'lvef', '<', '35' -> (None, 35 - one ulp); combined with an earlier comparison of the same field."""
    if name not in NUMERIC:
        raise FilterValueError(f"filter {name}{op}{s}: comparisons apply to numbers ({', '.join(NUMERIC)}); "
                               f"use {name}=value.")
    try:
        v = float(s)
    except ValueError:
        raise FilterValueError(f"filter {name}{op}{s}: {s!r} is not a number.") from None
    if math.isnan(v):
        raise FilterValueError(f"filter {name}{op}{s}: not a number.")
    lo, hi = before if isinstance(before, tuple) else (None, None)
    if op in ("<", "<="):
        hi = math.nextafter(v, -math.inf) if op == "<" else v
    else:
        lo = math.nextafter(v, math.inf) if op == ">" else v
    return (lo, hi)


def _parse_value(name: str, s: str):
    if name in MEASUREMENTS:
        if ".." not in s:
            raise FilterValueError(f"filter {name}={s!r}: expected a range low..high (either end may be "
                                   f"empty) or a comparison, e.g. {name}<35 or {name}=13..20.")
        return tuple(None if not x.strip() else _number(name, x.strip()) for x in s.split("..", 1))
    if name in ("age", "date", "field_strength") and ".." in s:
        lo, hi = (x.strip() or None for x in s.split("..", 1))
        return (lo, hi)
    if name == "field_strength":
        try:
            return float(s)
        except ValueError:
            raise FilterValueError(f"filter field_strength={s!r}: expected tesla, e.g. 1.5 or 1.4..1.6.") from None
    if name == "date":
        return (s, s)                          # date=2020 -> the whole of 2020
    if name == "age":
        raise FilterValueError(f"filter age={s!r}: expected a range low..high (either end may be empty) or "
                               "a comparison (age>=40).")
    parts = [p.strip() for p in s.split(",") if p.strip()]
    if name == "seg_quality":
        return parts
    if not parts:
        raise FilterValueError(f"filter {name}={s!r}: no value between the commas (e.g. {name}=a,b).")
    return parts if name in ("views", "labels", "findings") or len(parts) > 1 else parts[0]


def _finding_keys(value) -> list[str]:
    """findings=['LGE:affirmed', 'hcm:FAMILY'] -> checked 'CONCEPT:status' keys (every one must hold)."""
    if value is None:
        return []
    out = []
    for item in _strings("findings", value):
        concept, _, status = item.partition(":")
        if not concept.strip() or status.strip().lower() not in STATUSES:
            raise FilterValueError(f"filter findings={item!r}: expected CONCEPT:status with status one of "
                                   f"{', '.join(STATUSES)} (e.g. findings=LGE:affirmed,HCM:family).")
        out.append(f"{concept.strip().upper()}:{status.strip().lower()}")
    return out


def _number(name: str, s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise FilterValueError(f"filter {name}: {s!r} is not a number (e.g. {name}=13..20).") from None

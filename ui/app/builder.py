"""The workbench's cohort builder as plain functions (tested without Streamlit): the criteria a person adds,
in the cohort file's JSON form (search/cohort_definition.py), so that the page, `cmr cohort run FILE` and
Python run the same definition; the attrition chart's data with small cells suppressed.

    inc = [filter_criterion("age=40..80"), report_criterion("LGE", ["affirmed"])]
    d = definition("HFrEF", inc, [report_criterion("amyloid", ["affirmed", "uncertain"])], "first")
    CohortDefinition.from_dict(d).run(client)
"""
from __future__ import annotations

import re

import altair as alt
import polars as pl

from cmr_search.search.cohort_definition import FORMAT
from cmr_search.search.cohort_result import SMALL_COUNT, small

SPLIT = re.compile(r"[;\n]+")


def filter_criterion(text: str, name: str = "") -> dict:
    """'age=40..80; sex=F' (items split on ';' or new lines: all must hold) -> {"filter": [...]}."""
    items = [x.strip() for x in SPLIT.split(text or "") if x.strip()]
    return _named({"filter": items}, name)


def report_criterion(terms: str, status: list[str], name: str = "") -> dict:
    """'HCM, HOCM' with statuses -> a report criterion; several terms (comma-separated) are any of them."""
    parts = [t.strip() for t in (terms or "").split(",") if t.strip()]
    one = [{"report": t, "status": list(status)} for t in parts] or [{"report": "", "status": list(status)}]
    return _named(one[0] if len(one) == 1 else {"any": one}, name)


def semantic_criterion(text: str, mode: str, min_score: float, view: str = "study", name: str = "") -> dict:
    """Every study whose `mode` vector has a cosine of at least `min_score` with the text."""
    d = {"text": text, "mode": mode, "min_score": round(float(min_score), 4)}
    if mode == "image" and view != "study":
        d["view"] = view
    return _named(d, name)


def _named(d: dict, name: str) -> dict:
    return {**d, "name": name.strip()} if name and name.strip() else d


def definition(name: str, inclusion: list[dict], exclusion: list[dict], per_patient: str | None) -> dict:
    """The cohort file's JSON form (what `cmr cohort run FILE` reads)."""
    return {"format": FORMAT, "name": (name or "cohort").strip() or "cohort", "inclusion": list(inclusion),
            "exclusion": list(exclusion), "per_patient": per_patient}


def parts_of(d: dict) -> tuple[str, list[dict], list[dict], str | None]:
    """A cohort file's dict -> (name, inclusion, exclusion, per_patient) for the builder."""
    inner = d.get("definition", d) if isinstance(d.get("definition"), dict) else d
    return (inner.get("name", "cohort"), list(inner.get("inclusion", [])), list(inner.get("exclusion", [])),
            inner.get("per_patient"))


def attrition_rows(attrition: pl.DataFrame) -> list[dict]:
    """One row per step and level for the chart: counts 1-10 drawn as no bar, labelled '<11'."""
    rows = []
    for r in attrition.iter_rows(named=True):
        label = f"{r['step']}. {r['criterion']}"
        for level in ("studies", "patients"):
            n = r[level]
            hidden = n is None or 0 < n < SMALL_COUNT
            rows.append({"step": label, "level": level, "count": None if hidden else n, "at": 0 if hidden else n,
                         "shown": "n/a" if n is None else small(n)})
    return rows


def attrition_chart(attrition: pl.DataFrame) -> alt.LayerChart:
    """Horizontal bars of studies and patients at every step, in order (ATLAS's attrition picture), each
    bar labelled with its shown count."""
    data = alt.Data(values=attrition_rows(attrition))
    order = [f"{r['step']}. {r['criterion']}" for r in attrition.iter_rows(named=True)]
    base = alt.Chart(data).encode(
        y=alt.Y("step:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
        yOffset=alt.YOffset("level:N"), color=alt.Color("level:N", title=None),
        tooltip=["step:N", "level:N", alt.Tooltip("shown:N", title="count")])
    bars = base.mark_bar().encode(x=alt.X("count:Q", title="count (1-10 shown as <11)"))
    text = base.mark_text(align="left", dx=3).encode(x=alt.X("at:Q"), text="shown:N")
    return alt.layer(bars, text).properties(height=max(120, 36 * len(order)))

"""Cohort page, three tabs: Criteria (a cohort defined by inclusion and exclusion criteria, run exactly:
screens/cohort_criteria.py), Basket (studies picked from searches: counts and facets with small counts as
"<11", a threshold on a readable score, export to CSV / Parquet plus the query spec JSON; saved baskets
re-open and re-run) and Compare (union, intersection, difference of saved cohorts)."""
from __future__ import annotations

import json
import re
import warnings

import altair as alt
import streamlit as st

from cmr_search.search import audit
from cmr_search.search.cohort import Cohort
from cmr_search.search.private_files import private_dir

from .. import state
from ..logic import (FACET_FIELDS, SCORE_COLUMNS, cohort_from_basket, count_values, facet_frame, kept_keys,
                     make_filter, score_columns, small)
from .cohort_criteria import cohorts_dir, file_stem, render_builder, render_compare

TABLE_COLUMNS = ("study_key", "report_cosine", "image_cosine", "query", "age", "sex", "study_date", "manufacturer", "field_strength", "labels",
                 "impression")


def _clear() -> None:
    st.session_state.basket = {}


def histogram(basket: dict) -> tuple[float, str]:
    """The readable score to cut on (a cosine), its histogram coloured by query, and the threshold slider;
    returns (threshold, column): studies below it leave the export, studies without that score stay."""
    columns = score_columns(basket)
    if not columns:
        return -1.0, "report_cosine"
    column = st.selectbox("threshold on", columns, format_func=SCORE_COLUMNS.get, key="threshold_on",
                          help="each study's cosine with the query that found it, in the space named")
    rows = [r for r in basket.values() if r.get(column) is not None]
    scores = [r[column] for r in rows]
    if len(scores) < 2 or min(scores) == max(scores):
        return min(scores, default=-1.0), column
    lo, hi = float(min(scores)), float(max(scores))
    t = st.slider(f"{SCORE_COLUMNS[column]}: keep at or above", lo, hi, lo, step=(hi - lo) / 100, format="%.3f",
                  key="threshold")
    data = alt.Data(values=[{"cosine": r[column], "kept": r[column] >= t, "query": r.get("query") or "(none)"}
                            for r in rows])
    chart = alt.Chart(data).mark_bar().encode(alt.X("cosine:Q", bin=alt.Bin(maxbins=30), title=SCORE_COLUMNS[column]),
                                              alt.Y("count():Q"), alt.Color("query:N"), alt.Opacity("kept:N"))
    st.altair_chart(chart, width="stretch")
    return t, column


def facets(client, rows: list[dict]) -> None:
    """Basket facets (computed here) next to index facets (Qdrant facets under the current filters)."""
    filt = make_filter(st.session_state.get("filters") or {})
    cols = st.columns(len(FACET_FIELDS))
    for col, (name, field) in zip(cols, FACET_FIELDS.items()):
        col.markdown(f"**{name}**")
        col.caption("cohort")
        col.dataframe(facet_frame(count_values(rows, field)), hide_index=True, width="stretch")
        col.caption("whole index" + (" (current filters)" if filt else ""))
        col.dataframe(facet_frame(client.store.facet(field, filt)), hide_index=True, width="stretch")


def _downloaded(spec: dict, rows: int, name: str) -> None:
    """A download button's callback: the export leaves the workbench, so it joins the audit trail (the
    files written in DATA/exports at every render do not: they stay in the data folder)."""
    audit.record(state.settings(), "export", **audit.export_fields(spec, rows=rows, file=name))


def exports(cohort) -> None:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", cohort.spec["query"] or "cohort")[:40] or "cohort"
    out = private_dir(state.settings().folder.exports)          # 0700 when new; the files are 0600
    c = st.columns(3)
    for col, ext, mime in ((c[0], "csv", "text/csv"), (c[1], "parquet", "application/octet-stream")):
        path = cohort.export(out / f"{stem}.{ext}")
        col.download_button(ext.upper(), path.read_bytes(), f"{stem}.{ext}", mime, key=f"dl_{ext}",
                            icon=":material/download:", help=f"download the basket as {ext.upper()}",
                            on_click=_downloaded, args=(cohort.spec, len(cohort.keys), f"{stem}.{ext}"))
    spec = json.dumps({**cohort.spec, "keys": cohort.keys, "scores": cohort.scores}, indent=2)
    c[2].download_button("spec JSON", spec, f"{stem}.cohort.json", "application/json", key="dl_spec",
                         icon=":material/download:", help="download the query spec, keys and scores (re-runnable)",
                         on_click=_downloaded, args=(cohort.spec, len(cohort.keys), f"{stem}.cohort.json"))


def saved(client, cohort) -> None:
    st.subheader("Saved cohorts")
    c = st.columns([4, 2])
    name = c[0].text_input("name", value="cohort", key="save_name")
    if c[1].button("save", key="save_cohort", disabled=cohort is None):
        safe = file_stem(name)
        cohort.save(cohorts_dir() / f"{safe}.cohort.json")
        st.success(f"saved {safe}")
    files = sorted(p.name for p in cohorts_dir().glob("*.cohort.json"))
    if not files:
        return
    c = st.columns([4, 1, 1])
    pick = c[0].selectbox("saved", files, key="saved_pick")
    if c[1].button("re-open", key="reopen"):
        reopen(client, pick)
    if c[2].button("re-run", key="rerun"):
        rerun(client, pick)


def reopen(client, name: str) -> None:
    co = Cohort.load(cohorts_dir() / name)
    frame = co._fetch(client)
    st.session_state.basket = {r["study_key"]: r for r in frame.to_dicts()}
    st.session_state.query = co.spec.get("query", "")
    st.rerun()


def rerun(client, name: str) -> None:
    co = Cohort.load(cohorts_dir() / name)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        again = co.rerun(client)
    for x in w:
        st.warning(str(x.message))
    same = set(again.keys) & set(co.keys)
    st.info(f"re-run of {name}: {len(again.keys)} studies, {small(len(same))} in common with the saved "
            f"{len(co.keys)}; same ranked keys: {'yes' if again.keys[:len(co.keys)] == co.keys else 'no'}")


def render() -> None:
    st.title("Cohort")
    client = state.client()
    tabs = st.tabs(["Criteria", "Basket", "Compare"])
    with tabs[0]:
        render_builder(client)
    with tabs[1]:
        render_basket(client)
    with tabs[2]:
        render_compare()


def render_basket(client) -> None:
    basket = st.session_state.basket
    if basket:
        t, column = histogram(basket)
        keep = kept_keys(basket, t, column)
        st.metric("studies in the cohort", small(len(keep)), help="counts from 1 to 10 are shown as <11")
        rows = [basket[k] for k in keep]
        st.dataframe([{c: r.get(c) for c in TABLE_COLUMNS} for r in rows], hide_index=True,
                     width="stretch")
        st.button("empty the basket", on_click=_clear)
        facets(client, rows)
        spec = {k: st.session_state.get(k) for k in ("query", "mode", "view", "k", "filters", "positive",
                                                     "negative")}
        cohort = cohort_from_basket(client, basket, t, spec, column) if keep else None
        if cohort is not None:
            st.subheader("Export")
            exports(cohort)
    else:
        cohort = None
        st.info("The basket is empty: add studies from the Search page (the add button on a card, or 'add all shown').")
    saved(client, cohort)

"""Cohort page, criteria tabs: build a cohort from inclusion and exclusion criteria (measurements and
demographics, report terms read negation-aware, semantic text with a cosine cut-off), run it exactly on the
index, read its attrition table and chart, export it, save it; compare saved cohorts (union, intersection,
difference). The builder holds the cohort file's JSON form (ui/app/builder.py), so the page, `cmr cohort run
FILE` and Python give the same patients for the same definition.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import streamlit as st

from cmr_search.model.report_context import STATUSES
from cmr_search.search.cohort_definition import PER_PATIENT, CohortDefinition, read_file
from cmr_search.search.cohort_result import LEVELS, OPS, CohortResult, attrition_path, compare, result_path, small
from cmr_search.search.criteria import criterion_from
from cmr_search.search.errors import SearchError
from cmr_search.search.spec_files import parse_spec
from cmr_search.search.private_files import private_dir

from .. import state
from ..safe_text import md
from ..builder import attrition_chart, definition, filter_criterion, parts_of, report_criterion, semantic_criterion

PARTS = ("inclusion", "exclusion")
FILTER_HELP = ("Items separated by ';', all must hold: age=40..80, sex=F, lvef<40, lv_mass>150, max_wall>=15, "
               "date=2019..2021, vendor=SIEMENS, field_strength=3.0, views=lge_sax, labels=amyloid")
SCORE_HELP = ("A cosine (-1..1) between the text and each study's vector: the image vector (study space) or "
              "the report text (report space). Every study at or above it is in; nothing is top-k.")


def cohorts_dir():
    """DATA/cohorts, made 0700 when new (saved cohorts and results hold study keys: docs/privacy.md, "File
    modes")."""
    return private_dir(state.settings().folder.cohorts)


def file_stem(name: str) -> str:
    """A name as a file name: runs of other characters than letters, digits, - and _ become one _."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:60] or "cohort"


def _init() -> None:
    s = st.session_state
    for k in PARTS:
        s.setdefault(f"cb_{k}", [])
    s.setdefault("cb_name_box", "cohort")


# ---- adding and removing criteria --------------------------------------------------------------------
def _add(kind: str) -> None:
    """Button callback: the inputs of `kind` -> one criterion of the chosen part (checked first)."""
    s = st.session_state
    if kind == "filter":
        d = filter_criterion(s.cb_filter, s.get("cb_label", ""))
    elif kind == "report":
        d = report_criterion(s.cb_terms, s.cb_status or ["affirmed"], s.get("cb_label", ""))
    else:
        d = semantic_criterion(s.cb_text, s.cb_sem_mode, s.cb_min, s.cb_sem_view, s.get("cb_label", ""))
    try:
        criterion_from(d, "the new criterion")
    except SearchError as e:
        s.cb_error = str(e)
        return
    s.cb_error = None
    s[f"cb_{s.cb_part}"] = [*s[f"cb_{s.cb_part}"], d]


def _remove(part: str, i: int) -> None:
    items = list(st.session_state[f"cb_{part}"])
    del items[i]
    st.session_state[f"cb_{part}"] = items


def add_controls() -> None:
    st.radio("add to", PARTS, key="cb_part", horizontal=True, help="inclusion: every study must meet it; "
             "exclusion: a study meeting it leaves the cohort")
    st.text_input("step label (optional)", key="cb_label", help="the criterion's name in the attrition table")
    tabs = st.tabs(["measurements & demographics", "report terms", "semantic text"])
    with tabs[0]:
        st.text_input("filter", key="cb_filter", placeholder="age=40..80; lvef<40", help=FILTER_HELP)
        st.button("add filter", key="cb_add_filter", on_click=_add, args=("filter",))
    with tabs[1]:
        st.text_input("terms (comma: any of)", key="cb_terms", placeholder="LGE  or  HCM, HOCM",
                      help="a concept or any synonym of it (HCM = hypertrophic cardiomyopathy = HOCM)")
        st.multiselect("as the report states it", list(STATUSES), default=["affirmed"], key="cb_status",
                       help="affirmed, negated ('no LGE'), uncertain ('possible amyloid'), historical, family")
        st.button("add report terms", key="cb_add_report", on_click=_add, args=("report",))
    with tabs[2]:
        st.text_input("text", key="cb_text", placeholder="amyloid LGE pattern")
        c = st.columns(3)
        c[0].selectbox("space", ("report", "image"), key="cb_sem_mode")
        c[1].selectbox("image vector", ("study", "cine", "lge"), key="cb_sem_view")
        c[2].number_input("min cosine (-1..1)", -1.0, 1.0, 0.5, 0.05, key="cb_min", help=SCORE_HELP)
        st.button("add semantic text", key="cb_add_text", on_click=_add, args=("text",))
    if st.session_state.get("cb_error"):
        st.error(md(st.session_state.cb_error))


def criteria_list() -> None:
    for part in PARTS:
        items = st.session_state[f"cb_{part}"]
        st.markdown(f"**{part.capitalize()}** ({len(items)})")
        for i, d in enumerate(items):
            c = st.columns([10, 1], vertical_alignment="center")
            c[0].text(f"{i + 1}. {criterion_from(d).describe()}")
            c[1].button("remove", icon=":material/delete:", key=f"cb_rm_{part}_{i}", on_click=_remove, args=(part, i),
                        help=f"remove this {part} criterion")


# ---- loading, running, showing -----------------------------------------------------------------------
def _load(d: dict) -> None:
    s = st.session_state
    name, s.cb_inclusion, s.cb_exclusion, per = parts_of(d)
    s.cb_name_box, s.cb_per = name, per or "all studies"
    s.cb_result = None


def load_controls() -> None:
    files = sorted(p.name for p in cohorts_dir().glob("*.cohort.json") if _is_definition(p))
    c = st.columns([4, 1], vertical_alignment="bottom")
    pick = c[0].selectbox("saved definitions (DATA/cohorts)", files or ["(none yet)"], key="cb_pick")
    if c[1].button("open", key="cb_open", disabled=not files):
        try:
            _load(read_file(cohorts_dir() / pick))
            st.rerun()
        except SearchError as e:
            st.error(md(e))
    up = st.file_uploader("or a cohort file (JSON / YAML)", type=["json", "yaml", "yml"], key="cb_upload")
    if up is not None and st.button("open the uploaded file", key="cb_open_upload"):
        try:
            d = parse_spec(up.getvalue().decode("utf-8", errors="replace"), up.name)
            CohortDefinition.from_dict(d, up.name)
            _load(d)
            st.rerun()
        except SearchError as e:
            st.error(md(e))


def _is_definition(path: Path) -> bool:
    """A cohort definition (criteria), not a saved basket: its head names inclusion criteria."""
    with open(path, errors="replace") as f:
        return "inclusion" in f.read(65536)


def current_definition() -> dict:
    s = st.session_state
    per = s.get("cb_per", "all studies")
    return definition(s.cb_name_box, s.cb_inclusion, s.cb_exclusion, None if per == "all studies" else per)


def run_controls(client) -> None:
    c = st.columns([4, 3, 2], vertical_alignment="bottom")
    c[0].text_input("cohort name", key="cb_name_box")
    c[1].selectbox("one study per patient", ("all studies", *PER_PATIENT), key="cb_per",
                   help="first / last by study date, best by the first semantic criterion's cosine")
    if c[2].button("run the cohort", key="cb_run", type="primary"):
        try:
            d = CohortDefinition.from_dict(current_definition(), "the builder")
            st.session_state.cb_result = d.run(client)
            st.session_state.cb_run_error = None
        except SearchError as e:
            st.session_state.cb_result, st.session_state.cb_run_error = None, str(e)
    if st.session_state.get("cb_run_error"):
        st.error(md(st.session_state.cb_run_error))


def show_result(res: CohortResult, prefix: str = "cb") -> None:
    """Counts, the attrition table and chart, the rows at study or patient level."""
    c = st.columns(2)
    c[0].metric("studies", small(len(res.keys)), help="counts from 1 to 10 are shown as <11")
    c[1].metric("patients", small(len(res.patient_keys)), help="counts from 1 to 10 are shown as <11")
    st.subheader("Attrition")
    st.dataframe(res.attrition_shown(), hide_index=True, width="stretch", key=f"{prefix}_attrition")
    st.altair_chart(attrition_chart(res.attrition), width="stretch")
    level = st.radio("rows", LEVELS, key=f"{prefix}_level", horizontal=True)
    st.dataframe(res.frame(level, payload=False), hide_index=True, width="stretch")


def export_controls(res: CohortResult, name: str, prefix: str = "cb") -> None:
    """Export writes DATA/exports/<name>.csv and .parquet (+ .attrition.csv; one audit record each), then
    offers them for download."""
    level = st.session_state.get(f"{prefix}_level", "study")
    out = state.settings().folder.exports
    c = st.columns([2, 2, 2, 2])
    if c[0].button("export", icon=":material/ios_share:", key=f"{prefix}_export", help="write CSV, Parquet and the "
                   "attrition table to DATA/exports (recorded in the audit trail)"):
        private_dir(out)                                   # 0700 when new; the files are 0600
        st.session_state[f"{prefix}_files"] = [str(res.export(out / f"{file_stem(name)}.{ext}", level=level))
                                               for ext in ("csv", "parquet")]
    files = [Path(f) for f in st.session_state.get(f"{prefix}_files") or []]
    for i, (col, p) in enumerate(zip(c[1:], [*files, *(attrition_path(f) for f in files[:1])])):
        if p.exists():
            col.download_button(p.name, p.read_bytes(), p.name, key=f"{prefix}_dl_{i}", icon=":material/download:",
                                help=f"download {p.name}")


def save_controls(res: CohortResult | None) -> None:
    if st.button("save definition", icon=":material/save:", key="cb_save", help="DATA/cohorts/<name>.cohort.json (and the "
                 "result as <name>.result.json, for Compare)"):
        stem = file_stem(st.session_state.cb_name_box)
        path = cohorts_dir() / f"{stem}.cohort.json"
        path.write_text(json.dumps(current_definition(), indent=1))
        if res is not None:
            res.save(result_path(path.with_name(stem + ".csv")))
        st.success(f"saved {path.name}")


def render_builder(client) -> None:
    _init()
    with st.expander("open a saved cohort definition", expanded=False):
        load_controls()
    left, right = st.columns([2, 3])
    with left:
        add_controls()
    with right:
        criteria_list()
        run_controls(client)
    res = st.session_state.get("cb_result")
    if res is not None:
        show_result(res)
        export_controls(res, st.session_state.cb_name_box)
    save_controls(res)


# ---- compare ---------------------------------------------------------------------------------------------
def render_compare() -> None:
    """Union, intersection or difference of two saved results (save a run with 'save definition')."""
    files = sorted(p.name for p in cohorts_dir().glob("*.result.json"))
    if len(files) < 1:
        st.info("Save a cohort run (Criteria tab: run, then 'save definition') to compare cohorts here.")
        return
    c = st.columns([3, 2, 3, 2], vertical_alignment="bottom")
    a = c[0].selectbox("cohort A", files, key="cmp_a")
    op = c[1].selectbox("operation", OPS, key="cmp_op", help="difference: A minus B")
    b = c[2].selectbox("cohort B", files, index=min(1, len(files) - 1), key="cmp_b")
    lvl = c[3].selectbox("by", LEVELS, key="cmp_by", help="set operations per study or per patient")
    if st.button("compare", key="cmp_run", type="primary"):
        try:
            ra, rb = (CohortResult.load(cohorts_dir() / f) for f in (a, b))
            res = compare(ra, rb, op, lvl)
            res.store = state.client().store
            st.session_state.cmp_result, st.session_state.cmp_name = res, f"{a[:-12]}_{op}_{b[:-12]}"
        except SearchError as e:
            st.error(md(e))
    res = st.session_state.get("cmp_result")
    if res is not None:
        show_result(res, prefix="cmp")
        export_controls(res, st.session_state.cmp_name, prefix="cmp")

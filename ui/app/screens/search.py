"""Search page: query box, mode and view, filters, result cards with 👍/👎 refine and add-to-cohort."""
from __future__ import annotations

import time

import streamlit as st

from cmr_search.search.explain import explain_hits

from .. import state
from ..cards import SCALE_NOTE, array_paths, result_grid
from ..filters_ui import share_filters, sidebar_filters
from ..safe_text import md
from ..logic import make_filter, run_query

MODES = ("image", "report", "hybrid")
VIEWS = ("study", "cine", "lge")
K_CHOICES = (10, 20, 50, 100)


def _submit() -> None:
    s = st.session_state
    s.query, s.mode, s.view, s.k = s.q_box, s.q_mode, s.q_view, s.q_k
    s.positive, s.negative = [], []
    state.share_search()                      # the address bar now holds this search: copy it to share


def feedback(key: str, sign: int) -> None:
    s = st.session_state
    s.positive = [x for x in s.positive if x != key] + ([key] if sign > 0 else [])
    s.negative = [x for x in s.negative if x != key] + ([key] if sign < 0 else [])


def _clear_feedback() -> None:
    st.session_state.positive, st.session_state.negative = [], []


def query_form() -> None:
    s = st.session_state
    with st.form("query_form", border=False):
        c = st.columns([6, 2, 2, 1, 1], vertical_alignment="bottom")
        c[0].text_input("query", value=s.query, key="q_box", placeholder="e.g. amyloid LGE pattern")
        c[1].selectbox("mode", MODES, index=MODES.index(s.mode), key="q_mode")
        c[2].selectbox("view", VIEWS, index=VIEWS.index(s.view), key="q_view")
        c[3].selectbox("k", K_CHOICES, index=K_CHOICES.index(s.k) if s.k in K_CHOICES else 1, key="q_k")
        c[4].form_submit_button("Search", on_click=_submit, type="primary")


def current_results(client, filters: dict):
    """Run the query when what defines it changed since the last run (kept in the session)."""
    s = st.session_state
    sig = (s.query, s.mode, s.view, s.k, repr(sorted(filters.items())), tuple(s.positive), tuple(s.negative))
    if s.get("sig") != sig:
        t0 = time.perf_counter()
        s.results = run_query(client, s.query, s.k, s.mode, s.view, make_filter(filters), s.positive, s.negative)
        s.sig, s.last_query_s, s.runs = sig, time.perf_counter() - t0, s.get("runs", 0) + 1
        s.filters = filters
        s.why = explain_hits(client, s.results["study_key"].to_list(), s.query) if s.query.strip() else {}
    return s.results


def readable(rows: list[dict]) -> list[dict]:
    """Result rows with the scores a person reads (cosines per space, the best clause) from the page's
    explanations; `fused` where the order comes from a fused ranking (report, hybrid)."""
    s = st.session_state
    fused = s.mode != "image" and not (s.positive or s.negative)
    out = []
    for r in rows:
        why = (s.get("why") or {}).get(r["study_key"])
        extra = {**why.cosines(s.view), "best_clause": why.best_clause} if why is not None else {}
        out.append({**r, **extra, "fused": fused, "query": s.query})
    return out


def feedback_bar() -> None:
    s = st.session_state
    if s.positive or s.negative:
        c = st.columns([8, 2])
        c[0].info(f"refined by feedback: 👍 {len(s.positive)} · 👎 {len(s.negative)} "
                  f"(rated studies leave the list; ranking by the {s.view} image vector)")
        c[1].button("clear feedback", on_click=_clear_feedback)


def render() -> None:
    st.title("Search")
    client = state.client()
    filters = sidebar_filters(client)
    query_form()
    s = st.session_state
    if s.query.strip():
        share_filters()                       # the address bar holds the filters too
    if not s.query.strip():
        st.caption("Type what to look for: a finding, a pattern, a diagnosis.")
        return
    try:
        frame = current_results(client, filters)
    except Exception as e:                       # SearchError and friends: one line for the user
        st.error(md(f"{type(e).__name__}: {e}"))
        return
    feedback_bar()
    rows = readable(frame.to_dicts())
    c = st.columns([8, 2])
    c[0].caption(f"{len(rows)} results · run {s.runs} · {s.last_query_s * 1000:.0f} ms query · "
                 + SCALE_NOTE.format(view=s.view))
    c[1].button("add all shown", icon=":material/playlist_add:", help="add every result shown to the cohort basket", key="add_all", on_click=state.add_to_basket, args=(rows,))
    result_grid(rows, array_paths(state.cache_table()), feedback=feedback)

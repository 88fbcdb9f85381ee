"""Where the app's data lives and what one browser session holds (the basket, feedback, last query).

The client is opened once per server process (st.cache_resource), and every session shares the model and
the index. The embedded index: this process searches its own copy, which a notebook or another UI on the
same folder does too, and copies again after a writer (`cmr index`, labels written) is done; writers take
turns (docs/scale.md, "Several processes on one embedded index"). With `cmr ui --url` the index is on a
Qdrant server (several processes may then read and write it) and DATA keeps the cache and the model.

The app's settings (`settings()`, search/settings.py) are the search rule with the data folder always
given: the embedded index in DATA/index unless `cmr ui` handed over a server ($CMR_UI_URL, with
$CMR_UI_INSECURE for --insecure; the key and CA as $QDRANT_API_KEY / $QDRANT_TLS_CA), so $QDRANT_URL alone
never applies here.
"""
from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import streamlit as st
import torch

from cmr_search.search import connect
from cmr_search.search.settings import Settings

PAGES = ("Search", "Study", "Query by example", "Cohort", "Map", "About")
DEFAULTS = {"page": "Search", "study": None, "query": "", "mode": "hybrid", "view": "study", "k": 20,
            "filters": {}, "positive": [], "negative": [], "basket": {}, "results": None,
            "example_results": None}


def data_dir() -> Path:
    """$CMR_DATA (set by `cmr ui --data`), else ./cmr-data."""
    return Settings.from_env().data.resolve()


def settings(data: str | Path | None = None) -> Settings:
    """The app's settings for the data folder `data` (default data_dir())."""
    return Settings.for_search(data=data if data is not None else data_dir(),
                               url=os.environ.get("CMR_UI_URL") or None,   # `cmr ui --url`: a Qdrant server
                               insecure=os.environ.get("CMR_UI_INSECURE") == "1")


@st.cache_resource(show_spinner="opening the index…")
def _client(data: str):
    # one query text at a time: one thread is faster than several fighting for a shared machine's cores
    torch.set_num_threads(int(os.environ.get("CMR_UI_THREADS", "1")))
    c = connect(settings(data))
    c.model                       # load the text model now, not on the first query
    return c


def client():
    return _client(str(data_dir()))


@st.cache_data(show_spinner=False)
def _cache_table(path: str, mtime: float):
    return pl.read_parquet(path)


def cache_table():
    """The study cache table (array paths, QA), or None when the data folder has no cache."""
    path = settings().folder.studies_table
    return _cache_table(str(path), path.stat().st_mtime) if path.exists() else None


def clear_caches() -> None:
    """Forget cached tables and facets after the index changed (labels written, studies added)."""
    st.cache_data.clear()


def init_session() -> None:
    for k, v in DEFAULTS.items():
        if k not in st.session_state:
            st.session_state[k] = v.copy() if isinstance(v, (dict, list)) else v
    qp = st.query_params
    if not st.session_state.get("shared_applied"):       # a shared search URL: ?q=...&mode=...&view=...&k=...
        st.session_state.shared_applied = True
        apply_shared_search(qp)
    if qp.get("study") and st.session_state.study is None:
        st.session_state.study = qp["study"]
        st.session_state.page = "Study"


SHARED_MODES, SHARED_VIEWS = ("image", "report", "hybrid"), ("study", "cine", "lge")


def apply_shared_search(qp) -> None:
    """Open a search shared as a URL: q (the query), mode, view, k; values outside the choices are ignored."""
    s = st.session_state
    if qp.get("q"):
        s.query, s.page = str(qp["q"])[:2000], "Search"
    if qp.get("mode") in SHARED_MODES:
        s.mode = qp["mode"]
    if qp.get("view") in SHARED_VIEWS:
        s.view = qp["view"]
    if str(qp.get("k", "")).isdigit() and 1 <= int(qp["k"]) <= 100:
        s.k = int(qp["k"])


def share_search() -> None:
    """Put the current search in the URL, so that copying the address shares it."""
    s = st.session_state
    st.query_params.update({"q": s.query, "mode": s.mode, "view": s.view, "k": str(s.k)})


def open_study(key: str) -> None:
    """Button callback: show one study on the Study page."""
    st.session_state.study = key
    st.session_state.page = "Study"


def add_to_basket(rows: list[dict]) -> None:
    """Add result rows (dicts with study_key, score, payload fields) to the cohort basket."""
    basket = st.session_state.basket
    for r in rows:
        if r["study_key"] not in basket:
            basket[r["study_key"]] = dict(r)

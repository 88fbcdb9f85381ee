"""The cohort workbench (Streamlit script): `cmr ui` runs this file; the pages live in ui/app/screens/."""
from __future__ import annotations

import importlib

import streamlit as st

from cmr_search.ui.app import state        # the installed package: `streamlit run` needs no path
from cmr_search.ui.app.filters_ui import apply_shared_filters
from cmr_search.ui.app.screens.about import demo_model_banner, index_model_card

MODULES = {"Search": "search", "Study": "study", "Query by example": "example", "Cohort": "cohort",
           "Map": "map", "About": "about"}

st.set_page_config(page_title="cmr-search workbench", page_icon="🫀", layout="wide")
state.init_session()
if not st.session_state.get("shared_filters_applied"):       # a shared URL's filters, once per session
    st.session_state.shared_filters_applied = True
    apply_shared_filters(st.query_params)
st.sidebar.title(":material/cardiology: cmr-search")
st.sidebar.radio("page", state.PAGES, key="page", label_visibility="collapsed")
st.sidebar.caption(f"cohort basket: {len(st.session_state.basket)} studies")
if (banner := demo_model_banner(index_model_card())) is not None:
    st.warning(banner, icon=":material/science:")
importlib.import_module(f"cmr_search.ui.app.screens.{MODULES[st.session_state.page]}").render()

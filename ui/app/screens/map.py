"""Map page: the study embeddings in 2-D (PCA), colored by a label or payload field; hover shows the
study, a click opens it (Vega-Lite via st.altair_chart, bundled with Streamlit: no network)."""
from __future__ import annotations

import altair as alt
import streamlit as st

from .. import state
from ..logic import embedding_map

COLOR_FIELDS = ("labels", "sex", "manufacturer", "field_strength", "age")
TOOLTIP = ("study_key", "labels", "age", "sex", "manufacturer", "field_strength", "impression")


def chart(frame, color: str):
    sel = alt.selection_point(name="pick", fields=["study_key"], on="click")
    kind = "Q" if color == "age" else "N"
    return (alt.Chart(alt.Data(values=frame.to_dicts())).mark_circle(size=90)
            .encode(alt.X("x:Q", title="PC 1"), alt.Y("y:Q", title="PC 2"), alt.Color(f"{color}:{kind}"),
                    tooltip=[f"{t}:{'Q' if t == 'age' else 'N'}" for t in TOOLTIP],
                    opacity=alt.condition(sel, alt.value(1.0), alt.value(0.5)))
            .add_params(sel).properties(height=520))


def picked_key(event) -> str | None:
    """The study_key of the clicked point in an altair selection event, if any."""
    try:
        points = event["selection"]["pick"]
    except (KeyError, TypeError):
        return None
    if isinstance(points, dict):
        points = points.get("study_key") and [points]
    return (points or [{}])[0].get("study_key")


def render() -> None:
    st.title("Map")
    st.caption("Each point is a study (its `study` vector), projected to its first two principal components.")
    color = st.selectbox("color by", COLOR_FIELDS, key="map_color")
    frame = embedding_map(state.client())
    if frame.is_empty():
        st.info("The index is empty.")
        return
    event = st.altair_chart(chart(frame, color), width="stretch", on_select="rerun", key="map_chart")
    key = picked_key(event)
    if key:
        st.button(f"open study {key}", on_click=state.open_study, args=(key,), type="primary", key="map_open")
        if st.session_state.get("map_last") != key:        # a fresh click opens the study at once
            st.session_state.map_last = key
            state.open_study(key)
            st.rerun()

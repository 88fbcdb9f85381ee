"""Map page: the study embeddings in 2-D (PCA), colored by a label or payload field, with each study joined
to its nearest neighbours (exact kNN of the `study` vectors by cosine, search/neighbours.py: PCA flattens
the space, the lines show which studies are really close); hover shows the study and its neighbours, a
click opens it (Vega-Lite via st.altair_chart, bundled with Streamlit: no network)."""
from __future__ import annotations

import altair as alt
import numpy as np
import polars as pl
import streamlit as st

from cmr_search.search.neighbours import neighbour_table

from .. import state
from ..logic import embedding_map

COLOR_FIELDS = ("labels", "sex", "manufacturer", "field_strength", "age")
TOOLTIP = ("study_key", "labels", "age", "sex", "manufacturer", "field_strength", "impression", "neighbours")
MAX_NEIGHBOURS = 10


def chart(frame, color: str, edges: list[dict] = ()):
    sel = alt.selection_point(name="pick", fields=["study_key"], on="click")
    kind = "Q" if color == "age" else "N"
    points = (alt.Chart(alt.Data(values=frame.to_dicts())).mark_circle(size=90)
              .encode(alt.X("x:Q", title="PC 1"), alt.Y("y:Q", title="PC 2"), alt.Color(f"{color}:{kind}"),
                      tooltip=[f"{t}:{'Q' if t == 'age' else 'N'}" for t in TOOLTIP if t in frame.columns],
                      opacity=alt.condition(sel, alt.value(1.0), alt.value(0.5)))
              .add_params(sel))
    if not edges:
        return points.properties(height=520)
    lines = (alt.Chart(alt.Data(values=list(edges))).mark_rule(color="#888888", strokeWidth=1)
             .encode(x="x:Q", y="y:Q", x2="x2:Q", y2="y2:Q", opacity=alt.Opacity("cosine:Q", legend=None,
                     scale=alt.Scale(range=[0.15, 0.6])), tooltip=["a:N", "b:N", alt.Tooltip("cosine:Q", format=".3f")]))
    return alt.layer(lines, points).properties(height=520)


def neighbour_text(table: dict[str, list[tuple[str, float]]], key: str) -> str:
    """'key (0.934), key (0.912)' for the tooltip."""
    return ", ".join(f"{n} ({s:.3f})" for n, s in table.get(key, []))


def knn_edges(frame, table: dict[str, list[tuple[str, float]]]) -> list[dict]:
    """One line per kNN pair (each pair once, also when each is the other's neighbour), from the frame's x, y."""
    xy = {r["study_key"]: (r["x"], r["y"]) for r in frame.select("study_key", "x", "y").iter_rows(named=True)}
    seen, edges = set(), []
    for a in sorted(table):
        for b, s in table[a]:
            pair = (min(a, b), max(a, b))
            if pair in seen or a not in xy or b not in xy:
                continue
            seen.add(pair)
            edges.append({"a": pair[0], "b": pair[1], "cosine": round(s, 4), "x": xy[a][0], "y": xy[a][1],
                          "x2": xy[b][0], "y2": xy[b][1]})
    return edges


@st.cache_data(show_spinner="finding each study's nearest neighbours…")
def neighbours(keys: tuple[str, ...], k: int) -> dict[str, list[tuple[str, float]]]:
    """Each mapped study's k nearest among the mapped studies (exact kNN; cached per key set and k,
    forgotten with the other cached tables when the index changes)."""
    if k < 1 or len(keys) < 2:
        return {}
    vecs = np.asarray(state.client().store.vectors_of(list(keys), "study"), np.float32)
    return neighbour_table(list(keys), vecs, k)


def _any_label(frame: pl.DataFrame) -> bool:
    """Whether any mapped study carries a label (the labels column, a list or its text)."""
    if "labels" not in frame.columns:
        return False
    return any(v not in (None, "", "(none)") for v in frame["labels"].to_list())      # logic.embedding_map


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
    st.caption("Each point is a study (its `study` vector), projected to its first two principal components; "
               "a line joins a study to each of its nearest neighbours among the mapped studies (exact "
               "cosine kNN in the full space, not the projection).")
    left, right = st.columns(2)
    color = left.selectbox("color by", COLOR_FIELDS, key="map_color")
    k = right.slider("nearest neighbours per study", 0, MAX_NEIGHBOURS, 3, key="map_k",
                     help="0 hides the lines; hover a point to see its neighbours and their cosine")
    frame = embedding_map(state.client())
    if frame.is_empty():
        st.info("The index is empty.")
        return
    if color == "labels" and not _any_label(frame):
        st.info("No study has a label yet, so every point has the same colour. Label the index first: on the "
                "About page (label every study), or `cmr label --write` in a terminal; or colour by another field.")
    table = neighbours(tuple(frame["study_key"].to_list()), int(k))
    edges = knn_edges(frame, table)
    if table:
        frame = frame.with_columns(pl.Series("neighbours", [neighbour_text(table, key)
                                                            for key in frame["study_key"].to_list()]))
    event = st.altair_chart(chart(frame, color, edges), width="stretch", on_select="rerun", key="map_chart")
    key = picked_key(event)
    if key:
        st.button(f"open study {key}", on_click=state.open_study, args=(key,), type="primary", key="map_open")
        if st.session_state.get("map_last") != key:        # a fresh click opens the study at once
            st.session_state.map_last = key
            state.open_study(key)
            st.rerun()

"""Study page: every view playable, the segmentation drawn over the mid cine SAX slice at ED and ES, the LGE
stack scrubber, measurements, QA, impression, similar studies and the nearest reports of other studies."""
from __future__ import annotations

import json

import streamlit as st

from cmr_search.model.errors import CheckpointError
from cmr_search.model.segmentation import Segmenter
from cmr_search.search.results import to_frame

from .. import media, state
from ..cards import array_paths, result_grid
from ..measures import measurements_panel
from ..safe_text import md
from ..report_view import LEGEND, findings_table, show_report, why_panel

CINE = ("cine_sax", "cine_2ch", "cine_3ch", "cine_4ch")
LGE = ("lge_sax", "lge_2ch", "lge_3ch", "lge_4ch")
VIEW_PX = 192


def candidate_keys(client, limit: int = 200) -> list[str]:
    """Keys offered by the study picker: the open study, the last results and the basket (never a
    scroll of a large index); the first `limit` studies of the index when there are none."""
    s = st.session_state
    keys = ([s.study] if s.study else []) + (s.results["study_key"].to_list() if s.results is not None else [])
    keys += list(s.basket)
    if not keys:
        keys = [h.key for _, h in zip(range(limit), client.store.scroll())]
    return list(dict.fromkeys(keys))


def pick_study(client, choose: bool = True) -> str | None:
    """The study picker; `choose`: start on the first candidate when no study is open (else on none)."""
    s = st.session_state
    keys = candidate_keys(client)
    if not keys:
        st.info("The index is empty.")
        return None
    key = s.study if s.study in keys else None
    index = keys.index(key) if key else (0 if choose else None)
    chosen = st.selectbox("study", keys, index=index, placeholder="choose a study", key=f"pick_{key}")
    if chosen is None:
        return None
    s.study = chosen
    st.query_params["study"] = chosen
    return chosen


def drop_unknown(client) -> bool:
    """A study key (from the address, e.g. a link into another index) that this index does not hold: one
    error line saying how to find a study, and the key dropped. Returns whether it was dropped."""
    s = st.session_state
    if not s.study or client.store.present([s.study]):
        return False
    st.error(md(f"Study {s.study!r} is not in this index (a link from another index, or a mistyped key): find "
                "a study with a search on the Search page and open it from the results, or choose one below."))
    s.study = None
    if "study" in st.query_params:
        del st.query_params["study"]
    return True


@st.cache_resource(show_spinner="loading the segmenter…")
def _segmenter():
    """The default segmenter (model.segmentation.Segmenter.load: $CMR_SEG_CHECKPOINT, then the shipped one),
    or None when there is none."""
    try:
        return Segmenter.load()
    except CheckpointError:
        return None


def masks_panel(key: str, rel: str, mask_rel: str | None, fingerprint: str | None = None) -> None:
    """Where the study was measured: the cine SAX loop with every frame segmented and drawn over it (RV blue,
    myocardium green, LV cavity red), and the mid slice at ED and ES with the masks the measurements used."""
    data = state.data_dir()
    imgs = [media.overlay_png(data, key, rel, mask_rel, i, px=VIEW_PX) for i in (0, 1)]
    if not all(p is not None for p in imgs):
        return
    st.subheader("Segmentation")
    seg = _segmenter()
    loop = media.overlay_cine_gif(data, key, rel, seg, px=VIEW_PX) if seg is not None else None
    if loop is not None:
        same = fingerprint is None or seg.fingerprint == fingerprint
        st.image(str(loop), caption="cine SAX, segmented" + ("" if same else " (by the current segmenter, not "
                                                                          "the one that measured this study)"),
                 width=VIEW_PX)
    st.image([str(p) for p in imgs], caption=["mid SAX, ED", "mid SAX, ES"], width=VIEW_PX)


def views_panel(key: str, rel: str | None, mask_rel: str | None = None, fingerprint: str | None = None) -> None:
    if rel is None:
        st.warning("This study has no arrays in the cache (DATA/cache); only its record is shown.")
        return
    data = state.data_dir()
    views = media.load_views(state.settings(data).folder.cache, rel)
    cine = [v for v in CINE if v in views]
    if cine:
        st.subheader("Cine")
        st.image([str(media.cine_gif(data, key, rel, v, px=VIEW_PX)) for v in cine], caption=cine, width=VIEW_PX)
    masks_panel(key, rel, mask_rel, fingerprint)
    for v in (x for x in LGE if x in views):
        n = len(views[v])
        st.subheader(f"LGE {v[4:].upper()}")
        i = st.slider("slice (base → apex)", 0, n - 1, n // 2, key=f"lge_{key}_{v}") if n > 1 else 0
        st.image(str(media.lge_png(data, key, rel, i, v, px=VIEW_PX)), caption=f"{v} slice {i + 1}/{n}",
                 width=VIEW_PX)


def report_panel(client, row: dict) -> None:
    """The impression as text with its statuses drawn; with a current query, why this study is a hit."""
    query = (st.session_state.get("query") or "").strip()
    if query:
        why_panel(client, row["study_key"], query)
        return
    st.subheader("Impression")
    show_report(row.get("impression"))
    st.html(LEGEND)
    findings_table(list(row.get("report_findings") or []))


def record_panel(row: dict, table_row: dict | None) -> None:
    st.subheader("Record")
    st.markdown(md(f"age {row.get('age')} · sex {row.get('sex')} · date {row.get('study_date')} · "
                   f"{row.get('manufacturer')} {row.get('model_name') or ''} {row.get('field_strength')} T · "
                   f"labels {', '.join(row.get('labels') or []) or '—'}"))
    qa = (table_row or {}).get("qa") or row.get("qa") or {}
    st.subheader("QA")
    rows = qa_rows(json.loads(qa) if isinstance(qa, str) else qa)
    if rows["item"]:
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.caption("no QA record for this study")


def qa_rows(qa: dict) -> dict[str, list[str]]:
    """A study's QA record as a two-column table a person reads (nested values one row per key,
    lists joined), shown as text."""
    rows: list[tuple[str, str]] = []
    for key, value in (qa or {}).items():
        if isinstance(value, dict):
            rows += [(f"{key}: {k}", _text(v)) for k, v in value.items()] or [(key, "—")]
        else:
            rows.append((key, _text(value)))
    return {"item": [k for k, _ in rows], "value": [v for _, v in rows]}


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "; ".join(map(str, value)) or "—"
    return "—" if value in (None, "") else str(value)


def neighbours(client, key: str, paths: dict) -> None:
    st.subheader("Similar studies (study → study)")
    result_grid(client.similar(key, k=8).to_dicts(), paths, prefix="sim")
    st.subheader("Nearest reports of other studies (study → report)")
    rep = client.reports_for(key, k=5)
    st.dataframe(rep.select("study_key", "score", "impression"), hide_index=True, width="stretch")


def render() -> None:
    st.title("Study")
    client = state.client()
    key = pick_study(client, choose=not drop_unknown(client))
    if key is None:
        return
    row = to_frame(client.store.get([key])).to_dicts()[0]
    table = state.cache_table()
    paths = array_paths(table)
    trow = table.filter(table["study_key"] == key).to_dicts()[0] if table is not None and key in paths else None
    left, right = st.columns([3, 2])
    with left:
        views_panel(key, paths.get(key), (trow or {}).get("mask_path"), (trow or {}).get("seg_fingerprint"))
    with right:
        measurements_panel(row)
        report_panel(client, row)
        record_panel(row, trow)
        st.button("add to cohort", icon=":material/playlist_add:", help="add this study to the cohort basket",
                  on_click=state.add_to_basket, args=([{**row, "score": None}],),
                  disabled=key in st.session_state.basket, key="study_add")
    neighbours(client, key, paths)

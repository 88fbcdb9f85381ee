"""Query by example: upload one study (zip of DICOM files) and find the studies most like it."""
from __future__ import annotations

import uuid

import streamlit as st

from .. import state
from ..cards import array_paths, result_grid
from ..safe_text import md
from ..upload import UploadError, embed_upload
from ..upload_limits import MAX_MEGAPIXELS, MAX_SIDE, MAX_UPLOAD_MB


def _owner() -> str:
    """This session's token: one upload at a time per session (upload.upload_slot)."""
    return st.session_state.setdefault("upload_owner", uuid.uuid4().hex)


def _embed(data: bytes, name: str) -> None:
    client = state.client()
    with st.status(f"reading {md(name)}…", expanded=True) as status:
        try:
            vectors, qa, n_studies = embed_upload(data, client.model, progress=status.write, owner=_owner())
        except UploadError as e:
            status.update(label=md(f"upload refused: {e}"), state="error")
            st.session_state.example = None
            return
        if n_studies > 1:
            status.write(f"the zip holds {n_studies} studies; the largest one was used.")
        status.update(label=f"{md(name)}: embedded ({', '.join(sorted(vectors))} vectors)", state="complete",
                      expanded=False)
    st.session_state.example = {"name": name, "vectors": vectors, "qa": qa}


def render() -> None:
    st.title("Query by example")
    st.caption(f"Upload a zip of one study's DICOM files (at most {MAX_UPLOAD_MB} MB; images at most "
               f"{MAX_SIDE} x {MAX_SIDE}, {MAX_MEGAPIXELS} million pixels in all). It is unpacked in a "
               "temporary folder, read by the indexer, embedded by the index's model and then deleted.")
    up = st.file_uploader("study (.zip)", type=["zip"], key="example_zip")
    s = st.session_state
    if up is not None and (s.get("example") or {}).get("id") != up.file_id:
        _embed(up.getvalue(), "the uploaded study")   # file names may carry identifiers
        if s.get("example"):
            s.example["id"] = up.file_id
    ex = s.get("example")
    if not ex:
        return
    view = st.radio("match on", [v for v in ("study", "cine", "lge") if v in ex["vectors"]], horizontal=True,
                    key="example_view")
    k = st.select_slider("k", [5, 10, 20, 50], value=10, key="example_k")
    frame = state.client().similar(ex["vectors"][view], k=k, view=view)
    st.caption(f"{frame.height} studies most like {md(ex['name'])} ({view} vector)")
    result_grid(frame.to_dicts(), array_paths(state.cache_table()), prefix="ex")

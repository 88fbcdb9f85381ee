"""About page: the model card, index statistics and versions."""
from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path

import streamlit as st

from .. import state

PACKAGES = ("cmr-search", "streamlit", "torch", "polars", "qdrant-edge-py", "qdrant-client", "pillow", "altair")


def checkpoint_dir() -> Path:
    return Path(os.environ.get("CMR_CHECKPOINT") or state.data_dir() / "model")


def model_card() -> dict | None:
    p = checkpoint_dir() / "card.json"
    return json.loads(p.read_text()) if p.exists() else None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def render() -> None:
    st.title("About")
    client = state.client()
    info = client.info()
    st.subheader("Index")
    c = st.columns(4)
    c[0].metric("studies", info["points"])
    c[1].metric("vector size", info["dim"])
    c[2].metric("backend", info["backend"])
    c[3].metric("collection", info["collection"])
    st.write("named vectors: study, cine, lge, report · model ids: " + ", ".join(info["model_ids"]))
    st.subheader("Model card")
    card = model_card()
    if card is None:
        st.warning(f"no card.json in {checkpoint_dir().name}/ (the checkpoint folder).")
    else:
        c = st.columns(2)
        for col, title, value in ((c[0], "training data", card.get("training_data") or card.get("data")),
                                  (c[1], "metrics", card.get("metrics"))):
            col.markdown(f"**{title}**")
            col.json(value, expanded=True) if value else col.caption("not recorded in card.json")
        with st.expander("full card"):
            st.json(card)
    st.subheader("Versions")
    st.dataframe([{"package": k, "version": v} for k, v in versions().items()], hide_index=True)

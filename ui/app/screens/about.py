"""About page: the model card, index statistics, zero-shot labeling of the index (with progress), the audit
trail (search/audit.py: the last records, the whole log as CSV), versions."""
from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import polars as pl
import streamlit as st

from cmr_search.search.audit import audit_csv, read_audit
from cmr_search.search.collection import TEXT_VECTORS, VECTORS
from cmr_search.ui.label_cmd import DEFAULT_PROMPTS

from .. import state
from ..safe_text import md

DEMO_ON_REAL = "synthetic_model_on_real_studies"   # indexer.model_source.check_demo_model's record
AUDIT_SHOWN = 200                                  # audit records shown, newest first
PACKAGES = ("cmr-search", "streamlit", "torch", "polars", "qdrant-edge-py", "qdrant-client", "pillow", "altair")


def checkpoint_dir() -> Path:
    """The checkpoint folder the app's client loads (Settings.resolve_checkpoint, the search client's
    order: $CMR_CHECKPOINT, then DATA/model); DATA/model when there is none."""
    settings = state.settings()
    found, _ = settings.resolve_checkpoint(shipped=False)
    return Path(found) if found is not None else settings.folder.model


def model_card() -> dict | None:
    p = checkpoint_dir() / "card.json"
    return json.loads(p.read_text()) if p.exists() else None


def index_model_card() -> dict | None:
    """card.json of DATA/model, the model the index was built with (None when absent or unreadable)."""
    try:
        return json.loads((state.settings().folder.model / "card.json").read_text())
    except (OSError, ValueError):
        return None


def demo_model_banner(card: dict | None) -> str | None:
    """The workbench's banner when `cmr index` recorded that a model trained on synthetic phantoms only
    built this index of studies that are not synthetic; None otherwise."""
    rec = (card or {}).get(DEMO_ON_REAL)
    if not isinstance(rec, dict):
        return None
    return (f"Demonstration model: this index was built by a model trained on synthetic phantom studies "
            f"only, but {rec.get('real_studies', '?')} of its {rec.get('studies', '?')} studies are not "
            "synthetic, so image similarity on them is not meaningful (report-text search is). Train on this "
            "archive (`cmr train`) or index it with the published CMR-CLIP weights (`cmr index ARCHIVE "
            "--rebuild --checkpoint DIR`), then reopen the workbench.")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def training_summary(card: dict) -> dict | None:
    data = card.get("training_data") or card.get("data")
    if not data:
        return None
    keep = ("n_studies", "labels", "wording", "wording_splits", "views")
    out = {k: data[k] for k in keep if k in data}
    for k in ("device", "wall_seconds_this_run", "schedule", "demonstration_only"):
        if k in card:
            out[k] = card[k]
    return out


def metrics_summary(card: dict) -> dict | None:
    """Zero-shot AUCs and same-diagnosis R@10 per wording group of the card's evaluation."""
    if card.get("metrics"):
        return card["metrics"]
    groups = (card.get("eval") or {}).get("groups") or {}
    out = {}
    for name, g in groups.items():
        if not g or not g.get("n"):
            continue
        row = {"studies": g["n"]}
        for dx, m in ((g.get("zero_shot") or {}).get("diagnosis") or {}).items():
            if isinstance(m, dict) and "auc" in m:
                row[f"zero-shot AUC {dx}"] = round(m["auc"], 3)
        r = ((g.get("retrieval") or {}).get("study_to_report") or {}).get("same_label") or {}
        if "R@10" in r:
            row["study→report same-diagnosis R@10"] = round(r["R@10"], 3)
        out[f"{name} wording"] = row
    return out or None


def labeling_section(client) -> None:
    """Write zero-shot labels (`cmr label`'s default prompt sets) for every study, with a progress bar."""
    st.subheader("Zero-shot labels")
    st.caption("Scores every indexed study against the prompt sets of `cmr label` ("
               + ", ".join(DEFAULT_PROMPTS) + ") and stores the top label, used by the label filter, "
               "the facets and the map. Run it again after indexing new studies.")
    if not st.button("label every study", key="label_all"):
        return
    bar = st.progress(0.0, text="starting…")
    frame = client.label(DEFAULT_PROMPTS, write=True, progress=lambda f, msg: bar.progress(min(1.0, f), text=msg))
    state.clear_caches()
    counts = frame.group_by("label").len().sort("len", descending=True)
    st.success(md(f"labelled {frame.height} studies: " + ", ".join(f"{r['label']} {r['len']}" for r in counts.to_dicts())))


def audit_section() -> None:
    """The last AUDIT_SHOWN records of DATA/audit.jsonl as a table (plain text cells, never Markdown) and
    the whole log as a CSV download."""
    st.subheader("Audit trail")
    settings = state.settings()
    try:
        trail = read_audit(settings.data)
    except OSError as e:                            # a log another account owns (mode 0600)
        st.warning(f"the audit log cannot be read: {type(e).__name__}: {e}")
        return
    st.caption(f"Every search, cohort run and export is recorded in {settings.folder.audit_log.name} in the data "
               "folder (time, user, query, filters, counts; never a study key or an identifier): "
               f"{trail.height} records. `cmr audit` prints or exports it; docs/privacy.md, Audit trail.")
    if trail.is_empty():
        return
    shown = trail.tail(AUDIT_SHOWN).reverse().with_columns(pl.col("time").dt.strftime("%Y-%m-%d %H:%M:%S UTC"))
    st.dataframe(shown.select([c for c in shown.columns if shown[c].null_count() < shown.height]),
                 hide_index=True, width="stretch")
    st.download_button("audit log (CSV)", audit_csv(trail), "audit.csv", "text/csv", key="dl_audit",
                       icon=":material/download:", help="the whole audit trail as CSV (no identifiers)")


def vector_rows(store, info: dict) -> dict[str, list]:
    """The named vectors this index really holds (the report-text ones only when it was built with them):
    name, kind and size, and what each one is."""
    rows = [(v, "dense, cosine", info["dim"], f"the model's {v} vector") for v in VECTORS]
    if store.has_report_text:
        what = {"report_text": ("dense, cosine", info["report_text_dim"], "the kept report text (MiniLM)"),
                "report_clauses": ("multivector, MaxSim", info["report_text_dim"], "one per kept clause (MiniLM)"),
                "report_terms": ("sparse, BM25 (IDF)", None, "the kept report words")}
        rows += [(v, *what[v]) for v in TEXT_VECTORS]
    return {"vector": [r[0] for r in rows], "kind": [r[1] for r in rows], "size": [r[2] for r in rows],
            "what": [r[3] for r in rows]}


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
    st.dataframe(vector_rows(client.store, info), hide_index=True, width="stretch")
    st.caption(md("model ids: " + (", ".join(info["model_ids"]) or "none")))
    labeling_section(client)
    st.subheader("Model card")
    card = model_card()
    if card is None:
        st.warning(f"no card.json in {checkpoint_dir().name}/ (the checkpoint folder).")
    else:
        c = st.columns(2)
        for col, title, value in ((c[0], "training data", training_summary(card)),
                                  (c[1], "metrics", metrics_summary(card))):
            col.markdown(f"**{title}**")
            col.json(value, expanded=True) if value else col.caption("not recorded in card.json")
        with st.expander("full card"):
            st.json(card)
    st.subheader("Versions")
    st.dataframe([{"package": k, "version": v} for k, v in versions().items()], hide_index=True)
    audit_section()

"""The filter sidebar: age, sex, date range, vendor, field strength, views present, labels, and ranges of
the measurements (LVEF, LV mass, max wall thickness): a study without the measurement is left out as soon
as its range is narrowed."""
from __future__ import annotations

import streamlit as st

from cmr_search.model.preprocess import VIEWS

from .state import data_dir

AGE_RANGE = (0, 100)
MEASURE_RANGES = {"lvef": ("LVEF (%)", (0, 100)), "lv_mass": ("LV mass (g)", (0, 400)),
                  "max_wall": ("max wall (mm)", (0, 40))}     # field -> (label, slider range = no filter)


@st.cache_data(ttl=60, show_spinner=False)
def _facet_values(_client, data: str, field: str) -> list[str]:
    """Values offered by a filter (Qdrant facet of the whole index), refreshed every minute."""
    try:
        return sorted(str(v) for v, _ in _client.store.facet(field, limit=50) if v not in (None, ""))
    except Exception:                       # an older index without that payload index: offer nothing
        return []


# ---- filters in a shared URL (?f_sex=F,M&f_age=40-80&f_lvef=0-35&...) ---------------------------------
LISTS = ("f_sex", "f_vendor", "f_views", "f_labels")          # multiselects: comma-separated
RANGES = {"f_age": AGE_RANGE, **{f"f_{k}": full for k, (_, full) in MEASURE_RANGES.items()}}   # sliders: lo-hi
TEXTS = ("f_from", "f_to")
FIELD_STRENGTHS = ("any", "1.5", "3.0")


def shared_params() -> dict[str, str]:
    """The filter widgets that differ from their defaults, as query-string values."""
    s, out = st.session_state, {}
    for k in LISTS:
        if s.get(k):
            out[k] = ",".join(map(str, s[k]))
    for k, full in RANGES.items():
        if k in s and tuple(s[k]) != tuple(full):
            out[k] = f"{s[k][0]}-{s[k][1]}"
    out.update({k: s[k].strip() for k in TEXTS if (s.get(k) or "").strip()})
    if s.get("f_fs", "any") != "any":
        out["f_fs"] = s["f_fs"]
    return out


def share_filters() -> None:
    """Keep the address bar's filter part equal to the sidebar (a copied URL carries the filters)."""
    params = shared_params()
    for k in (*LISTS, *RANGES, *TEXTS, "f_fs"):
        if k in params:
            if st.query_params.get(k) != params[k]:
                st.query_params[k] = params[k]
        elif k in st.query_params:
            del st.query_params[k]


def apply_shared_filters(qp) -> None:
    """Set the filter widgets from a shared URL; values that do not parse or fall outside a slider's range are
    ignored (multiselect values unknown to this index are dropped when the widget renders its options)."""
    s = st.session_state
    for k in LISTS:
        if qp.get(k):
            s[k] = [v for v in str(qp[k]).split(",")[:50] if v and (k != "f_sex" or v in ("F", "M"))]
    for k, (lo, hi) in RANGES.items():
        parts = str(qp.get(k, "")).split("-")
        if len(parts) == 2 and all(p.isdigit() for p in parts) and lo <= int(parts[0]) <= int(parts[1]) <= hi:
            s[k] = (int(parts[0]), int(parts[1]))
    for k in TEXTS:
        if qp.get(k):
            s[k] = str(qp[k])[:10]
    if qp.get("f_fs") in FIELD_STRENGTHS:
        s.f_fs = qp["f_fs"]


def sidebar_filters(client) -> dict:
    """Render the filter widgets; returns Filter fields (only those set)."""
    sb = st.sidebar
    sb.subheader("Filters")
    age = sb.slider("age", *AGE_RANGE, AGE_RANGE, key="f_age")
    sex = sb.multiselect("sex", ["F", "M"], key="f_sex")
    c1, c2 = sb.columns(2)
    d_from = c1.text_input("date from", placeholder="YYYY[-MM]", key="f_from")
    d_to = c2.text_input("date to", placeholder="YYYY[-MM]", key="f_to")
    vendors = _facet_values(client, str(data_dir()), "manufacturer")
    _known("f_vendor", vendors)
    vendor = sb.multiselect("vendor", vendors, key="f_vendor")
    fs = sb.selectbox("field strength (T)", ["any", "1.5", "3.0"], key="f_fs")
    _known("f_views", list(VIEWS))
    views = sb.multiselect("views present (all of)", list(VIEWS), key="f_views")
    label_values = _facet_values(client, str(data_dir()), "labels")
    _known("f_labels", label_values)
    labels = sb.multiselect("labels (any of)", label_values, key="f_labels")
    fields = {"sex": sex or None, "vendor": vendor or None, "views": views or None, "labels": labels or None}
    if tuple(age) != AGE_RANGE:
        fields["age"] = tuple(float(a) for a in age)
    if d_from.strip() or d_to.strip():
        fields["date"] = (d_from.strip() or None, d_to.strip() or None)
    if fs != "any":
        fields["field_strength"] = float(fs)
    fields.update(measure_filters(sb))
    return {k: v for k, v in fields.items() if v is not None}


def _known(key: str, options: list[str]) -> None:
    """Drop values a shared URL set that this index does not offer (a multiselect refuses them)."""
    if st.session_state.get(key):
        st.session_state[key] = [v for v in st.session_state[key] if v in options]


def measure_filters(sb) -> dict:
    """Range sliders of the measurements; a slider at its full range sets no filter, an end at the slider's
    end stays open (LV mass above 400 g still passes 150..400)."""
    sb.caption("measurements (studies without one drop out once its range is narrowed)")
    out = {}
    for field, (label, full) in MEASURE_RANGES.items():
        lo, hi = sb.slider(label, *full, full, key=f"f_{field}")
        if (lo, hi) != full:
            out[field] = (float(lo) if lo > full[0] else None, float(hi) if hi < full[1] else None)
    return out

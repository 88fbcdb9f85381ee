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


def sidebar_filters(client) -> dict:
    """Render the filter widgets; returns Filter fields (only those set)."""
    sb = st.sidebar
    sb.subheader("Filters")
    age = sb.slider("age", *AGE_RANGE, AGE_RANGE, key="f_age")
    sex = sb.multiselect("sex", ["F", "M"], key="f_sex")
    c1, c2 = sb.columns(2)
    d_from = c1.text_input("date from", placeholder="YYYY[-MM]", key="f_from")
    d_to = c2.text_input("date to", placeholder="YYYY[-MM]", key="f_to")
    vendor = sb.multiselect("vendor", _facet_values(client, str(data_dir()), "manufacturer"), key="f_vendor")
    fs = sb.selectbox("field strength (T)", ["any", "1.5", "3.0"], key="f_fs")
    views = sb.multiselect("views present (all of)", list(VIEWS), key="f_views")
    labels = sb.multiselect("labels (any of)", _facet_values(client, str(data_dir()), "labels"), key="f_labels")
    fields = {"sex": sex or None, "vendor": vendor or None, "views": views or None, "labels": labels or None}
    if tuple(age) != AGE_RANGE:
        fields["age"] = tuple(float(a) for a in age)
    if d_from.strip() or d_to.strip():
        fields["date"] = (d_from.strip() or None, d_to.strip() or None)
    if fs != "any":
        fields["field_strength"] = float(fs)
    fields.update(measure_filters(sb))
    return {k: v for k, v in fields.items() if v is not None}


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

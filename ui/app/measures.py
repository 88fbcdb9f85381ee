"""Measurements on the workbench: one line for a result card, a table and the flags for the study page,
and the mask overlay on the cached cine (media.overlay_png). Values come from the index payload
(search.collection.MEASUREMENTS); a study that was not measured shows a dash, never a number."""
from __future__ import annotations

import streamlit as st

QUALITY = {"good": "✓ good", "check": "⚠ check", "poor": "⛔ poor"}
ROWS = (  # (label, payload field, unit, indexed field)
    ("LVEF", "lvef", "%", None), ("LVEDV", "lvedv", "ml", "lvedvi"), ("LVESV", "lvesv", "ml", "lvesvi"),
    ("LV mass", "lv_mass", "g", "lv_massi"), ("max wall (ED)", "max_wall", "mm", None),
    ("RVEF", "rvef", "%", None), ("RVEDV", "rvedv", "ml", "rvedvi"), ("RVESV", "rvesv", "ml", "rvesvi"))


def _num(v, unit: str) -> str:
    return "—" if v is None else f"{v:.0f} {unit}"


def quality(r: dict) -> str:
    return QUALITY.get(r.get("seg_quality") or "", "not measured")


def measure_line(r: dict) -> str:
    """'LVEF 54 % · LVEDV 150 ml (81 ml/m²) · LV mass 120 g · wall 11 mm · RVEF 50 % · ✓ good'."""
    if r.get("lvef") is None and r.get("lvedv") is None:
        return f"measurements: {quality(r)}"
    edv = _num(r.get("lvedv"), "ml") + (f" ({r['lvedvi']:.0f} ml/m²)" if r.get("lvedvi") is not None else "")
    return (f"LVEF {_num(r.get('lvef'), '%')} · LVEDV {edv} · LV mass {_num(r.get('lv_mass'), 'g')} · "
            f"wall {_num(r.get('max_wall'), 'mm')} · RVEF {_num(r.get('rvef'), '%')} · {quality(r)}")


def measurements_panel(r: dict) -> None:
    """The study page's measurement table (values and, where height and weight exist, per m²) and flags."""
    st.subheader("Measurements")
    lines = ["| measure | value | per m² |", "|---|---|---|"]
    for name, f, unit, fi in ROWS:
        per_m2 = "" if not fi or r.get(fi) is None else f"{r[fi]:.0f} {unit}/m²"
        lines.append(f"| {name} | {_num(r.get(f), unit)} | {per_m2} |")
    st.markdown("\n".join(lines))
    flags = [f for f in (r.get("seg_flags") or []) if f]
    st.caption(f"segmentation quality: {quality(r)}" + (f" — {'; '.join(flags)}" if flags else ""))

"""Result cards: cine loop + LGE still, readable scores, age/sex, labels, measurements (LVEF, LVEDV(i), LV
mass, max wall, RVEF, quality), impression with the clause that matched the query marked, and the card's
actions.

Scores a person can read: a cosine (-1..1) named by its space: `report cos` (the best indexed clause with
the query, report-text space), `image cos` (the study's image vector with the query, study space). Hybrid
and report rankings are fused ranks (search/fusion.py): a card then shows its rank, never the fused number.
"""
from __future__ import annotations

import streamlit as st

from . import media
from .measures import measure_line
from .report_view import show_match, show_snippet
from .safe_text import md
from .state import add_to_basket, data_dir, open_study

COLUMNS = 4
SNIPPET = 140


def array_paths(table) -> dict[str, str]:
    """study_key -> its arrays file in the cache (empty when there is no cache)."""
    if table is None:
        return {}
    return dict(zip(table["study_key"].to_list(), table["array_path"].to_list()))


SCALE_NOTE = ("Scores are cosines (-1..1) in the space named: report cos = the best report clause with the query "
              "(report-text space); image cos = the {view} image vector with the query (study space). "
              "Report and hybrid results are ordered by fused ranks (#), which are not similarities.")


def headline(r: dict, rank: int) -> str:
    """'#3 · report cos 0.62 · image cos 0.31 · 54 y · F' (fused rankings) or 'cos 0.412 · 54 y · F'."""
    bits = [f"#{rank}"] if r.get("fused") else []
    bits += [f"{name} cos **{r[col]:.2f}**" for col, name in (("report_cosine", "report"), ("image_cosine", "image"))
             if r.get(col) is not None]
    if not r.get("fused") and len(bits) == 0 and r.get("score") is not None:
        bits.append(f"cos **{r['score']:.3f}**")            # study -> study, query by example: a cosine
    age = "?" if r.get("age") is None else f"{r['age']:.0f}"
    return " · ".join([*bits, f"{age} y", md(r.get("sex") or "?")])


def thumbnails(key: str, paths: dict[str, str], px: int = media.THUMB_PX) -> None:
    rel = paths.get(key)
    if rel is None:
        st.caption("no images in the cache")
        return
    imgs = [(p, c) for p, c in ((media.cine_gif(data_dir(), key, rel, px=px), "cine SAX"),
                                (media.lge_png(data_dir(), key, rel, px=px), "LGE")) if p is not None]
    for col, (p, c) in zip(st.columns(2, gap="small"), imgs):
        col.image(str(p), caption=c, width="stretch")


def result_grid(rows: list[dict], paths: dict[str, str], feedback=None, prefix: str = "r") -> None:
    """Cards in a grid; `feedback(key, +1 | -1)` adds 👍/👎 buttons when given."""
    for start in range(0, len(rows), COLUMNS):
        for col, (i, r) in zip(st.columns(COLUMNS), enumerate(rows[start:start + COLUMNS], start)):
            with col.container(border=True):
                card(r, i + 1, paths, feedback, prefix)


def card(r: dict, rank: int, paths: dict[str, str], feedback, prefix: str) -> None:
    key = r["study_key"]
    thumbnails(key, paths)
    st.markdown(headline(r, rank))
    labels = ", ".join(r.get("labels") or []) or "no labels"
    st.caption(f"#{rank} · `{key}` · {md(labels)}")
    st.caption(measure_line(r))
    show_snippet(r.get("impression"), SNIPPET)            # as text, negated parts struck through
    if r.get("best_clause"):
        show_match(r["best_clause"], r.get("report_cosine"))
    actions(r, key, feedback, prefix)


def actions(r: dict, key: str, feedback, prefix: str) -> None:
    """The card's buttons: an icon and a word each (the word is the accessible name), a tooltip saying what
    it does; two per row so that the words fit a card."""
    in_basket = key in st.session_state.basket
    items = [("more", ":material/thumb_up:", "more like this: rank studies like this one higher", f"{prefix}_up_{key}",
              feedback, (key, 1), False),
             ("less", ":material/thumb_down:", "less like this: rank studies like this one lower",
              f"{prefix}_down_{key}", feedback, (key, -1), False)] if feedback else []
    items += [("added" if in_basket else "add", ":material/check:" if in_basket else ":material/playlist_add:",
               "in the cohort basket" if in_basket else "add this study to the cohort basket", f"{prefix}_add_{key}",
               add_to_basket, ([r],), in_basket),
              ("open", ":material/open_in_new:", "open the study page", f"{prefix}_open_{key}", open_study, (key,), False)]
    for row in range(0, len(items), 2):
        for col, (label, icon, tip, k, fn, args, off) in zip(st.columns(2, gap="small"), items[row:row + 2]):
            col.button(label, icon=icon, help=tip, key=k, on_click=fn, args=args, disabled=off, width="stretch")

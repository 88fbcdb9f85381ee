"""Report text as the workbench shows it: as TEXT (HTML-escaped, never Markdown), with what the report reader
found (model/report_context.py) drawn on it: negated parts struck through, uncertain ones in grey italics,
historical and family ones tagged, the clause that best matched the query marked.

    st.html(report_html(segments("LV dilated, no LGE."), best="LV dilated"))
"""
from __future__ import annotations

import streamlit as st

from cmr_search.model.report_context import segments
from cmr_search.search.explain import explain

from .safe_text import html_text, md, was_cut

STYLE = {"negated": ("<del title='negated in the report'>", "</del>"),
         "uncertain": ("<i style='color:#666' title='uncertain in the report'>", "</i>"),
         "historical": ("<span style='color:#666' title='historical'>", "<sup>hist</sup></span>"),
         "family": ("<span style='color:#666' title='a relative'>", "<sup>family</sup></span>")}
LEGEND = "<small><del>negated</del> · <i style='color:#666'>uncertain</i> · <sup>hist</sup> history · " \
         "<sup>family</sup> a relative · <mark>best-matching clause</mark></small>"


def report_html(runs: list[tuple[str, str]], best: str | None = None) -> str:
    """(piece, status) runs -> one escaped HTML paragraph; the first occurrence of `best` is marked."""
    text = "".join(p for p, _ in runs)
    lo = text.find(best) if best else -1
    hi = lo + len(best) if lo >= 0 else -1
    out, at = [], 0
    for piece, status in runs:
        start, end = at, at + len(piece)
        cut = sorted({start, end, *(x for x in (lo, hi) if start < x < end)})
        body = "".join(_marked(text[a:b], lo <= a and b <= hi) for a, b in zip(cut, cut[1:]))
        pre, post = STYLE.get(status, ("", ""))
        out.append(pre + body + post)
        at = end
    return "<p style='white-space:pre-wrap;overflow-wrap:anywhere;margin:0'>" + "".join(out) + "</p>"


def _marked(text: str, mark: bool) -> str:
    return f"<mark>{html_text(text)}</mark>" if mark and text else html_text(text)


@st.cache_data(max_entries=2048, show_spinner=False)
def cached_segments(text: str) -> list[tuple[str, str]]:
    return segments(text)


def cut_runs(runs: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """The first n characters of the runs (whitespace collapsed), '…' when cut."""
    out, left = [], n
    for piece, status in runs:
        piece = " ".join(piece.split()) + (" " if piece[-1:].isspace() else "")
        if left <= 0:
            break
        if len(piece) > left:
            out.append((piece[:left - 1].rstrip() + "…", status))
            break
        out.append((piece, status))
        left -= len(piece)
    return out


def show_snippet(text: str | None, n: int) -> None:
    """A card's impression: its first n characters, statuses drawn."""
    if not text:
        st.caption("no report")
        return
    st.html(report_html(cut_runs(cached_segments(text), n)))


def show_match(clause: str, cosine: float | None) -> None:
    """A card's best-matching report clause, marked, with its cosine."""
    score = "" if cosine is None else f" <small>(report cos {cosine:.2f})</small>"
    st.html(f"<p style='overflow-wrap:anywhere;margin:0'><small>matched:</small> <mark>{html_text(clause)}</mark>"
            f"{score}</p>")


def show_report(text: str | None, best: str | None = None) -> None:
    if not text:
        st.caption("no report")
        return
    st.html(report_html(cached_segments(text), best))
    if was_cut(text):                         # a token too long to show: the whole text, one click away
        st.download_button("full report text", text, "report.txt", "text/plain", icon=":material/download:",
                           help="a word of this report is too long to show whole; the full text as a file")


def why_panel(client, key: str, query: str) -> None:
    """The study as a hit for the current query: best clause (marked in the impression above it), every
    indexed clause's cosine, the image views' cosines, the report's findings."""
    why = explain(client, key, query)
    st.subheader("Impression")
    show_report(why.impression, why.best_clause)
    st.html(LEGEND)
    st.subheader(f"Why this hit for “{md(query)}”")
    if why.clauses:
        st.caption("report clauses (cosine with the query in the report-text space, -1..1; best first)")
        st.dataframe({"clause": [c for c, _ in why.clauses], "cosine": [s for _, s in why.clauses]},
                     hide_index=True, width="stretch")
    if why.views:
        st.caption("image vectors (cosine with the query in the study space, -1..1): "
                   + " · ".join(f"{v} {s:.3f}" for v, s in why.views.items()) + f" — best: {why.best_view}")
    findings_table(why.findings)


def findings_table(keys: list[str]) -> None:
    if not keys:
        return
    st.caption("what the report states (findings=CONCEPT:status filters)")
    pairs = [k.split(":", 1) for k in keys]
    st.dataframe({"finding": [c for c, _ in pairs], "status": [s for _, s in pairs]}, hide_index=True, width="stretch")

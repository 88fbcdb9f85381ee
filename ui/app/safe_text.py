"""Data-derived text (reports, DICOM headers, labels, file names, typed or shared queries, error messages
that quote them) shown as TEXT: never Markdown, never a Streamlit directive, never a link or a remote image.

    st.caption(md(f"vendor {row['manufacturer']}"))     # for Markdown-rendering calls: every sign escaped
    st.html(f"<p>{html_text(impression)}</p>")          # for HTML: escaped
    clean("LVEF \u202e%53")                             # bidirectional controls removed, long tokens cut

What each does to the text first (clean): removes bidirectional controls (a right-to-left override shows
"LVEF 35%" as "%53 FEVL") and other control characters but new lines and tabs, and cuts every token longer
than LONG_TOKEN characters (a 200 KB unbroken token froze the study page for 70 s) to its start and "…"; the
full text stays one click away (report_view offers it as a download). Markdown escaping is a backslash
before every ASCII punctuation mark (CommonMark: any of them may be escaped), which also keeps ':' of
`:red[...]` and `:material/...:` from forming directives and icons; GFM's auto-links (http://, www.,
name@host) form even from escaped signs in Streamlit's renderer, so a zero-width space breaks each.
"""
from __future__ import annotations

import html
import re

LONG_TOKEN = 80           # characters of one unbroken token shown; longer ones are cut
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")       # direction marks and overrides
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")                      # C0/C1 controls but \t and \n
LONG = re.compile(r"\S{%d,}" % (LONG_TOKEN + 1))
PUNCT = re.compile(r"([!-/:-@\[-`{-~])")                                   # every ASCII punctuation mark
ZWSP = "\u200b"
AUTOLINK = re.compile(r"(?i)(?<=www)(?=\.)|(?<=:)(?=//)|(?=@)")   # where GFM's autolink literals form


def clean(text) -> str:
    """`text` (any value) as a display string: no direction or control characters, long tokens cut."""
    s = CONTROL.sub("", BIDI.sub("", "" if text is None else str(text)))
    return LONG.sub(lambda m: m.group(0)[:LONG_TOKEN] + "…", s)


def was_cut(text) -> bool:
    """Whether clean() cut a token of `text` (the display then offers the full text)."""
    return bool(LONG.search("" if text is None else str(text)))


def md(text) -> str:
    """For st.markdown / caption / error / subheader ...: cleaned, every punctuation mark escaped, and a
    zero-width space inside 'www.', '://' and before '@' (GFM's auto-links form even from escaped signs)."""
    return PUNCT.sub(r"\\\1", AUTOLINK.sub(ZWSP, clean(text)))


def html_text(text) -> str:
    """For st.html: cleaned and HTML-escaped."""
    return html.escape(clean(text))

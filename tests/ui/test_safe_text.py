"""ui/app/safe_text.py: data-derived text is shown as text (no Markdown, directives, links, remote images),
without direction overrides, with long tokens cut."""
from cmr_search.ui.app.safe_text import LONG_TOKEN, clean, html_text, md, was_cut

HOSTILE = ["![x](http://evil.example/beacon.png)", "# HEADING", ":red[alarm] :material/warning:",
           "see http://evil.example and www.evil.example", "**bold** _it_ `code` <b>tag</b>", "[link](javascript:x)",
           "$x^2$", "| a | b |\n|---|---|", "> quote", "1. list", "\\:red[escaped]"]


def test_md_renders_as_the_plain_text_itself():
    """CommonMark with GFM tables and strikethrough (markdown-it-py, what rich uses) renders md(text) as one
    paragraph of exactly the text: no image, link, heading, emphasis, code, table or HTML tag."""
    import html
    import re

    from markdown_it import MarkdownIt
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    for text in HOSTILE:
        out = parser.render(md(text))
        assert set(re.findall(r"</?([a-z0-9]+)", out)) <= {"p", "br"}, (text, out)
        body = html.unescape(re.sub(r"</?p>|<br />", "", out)).replace("\u200b", "").strip()
        assert " ".join(body.split()) == " ".join(text.split()), (text, out)
    assert ":" not in md(":red[x]").replace("\\:", "")           # no directive, no icon
    for text in ("http://evil.example/x", "WWW.evil.example", "mail me@evil.example"):   # GFM auto-links
        out = md(text).replace("\\", "")
        assert "://" not in out and "www." not in out.lower() and "e@" not in out, out


def test_bidi_and_controls_removed():
    assert clean("LVEF \u202e35%\u202c ok\u2066x\u2069") == "LVEF 35% okx"
    assert clean("a\x00b\x1bc\td\ne") == "abc\td\ne"
    assert clean(None) == ""


def test_long_tokens_cut_with_the_full_text_kept_elsewhere():
    token = "A" * 200_000
    out = clean(f"LGE {token} end")
    assert out == f"LGE {'A' * LONG_TOKEN}… end" and was_cut(token) and not was_cut("short words only")


def test_html_text_escapes():
    assert html_text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"

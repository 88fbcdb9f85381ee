"""Report text in the workbench (ui/app/report_view.py): escaped text, statuses drawn, best clause marked."""
from cmr_search.model.report_context import segments
from cmr_search.ui.app.report_view import cut_runs, report_html


def test_statuses_are_drawn_and_the_best_clause_marked():
    out = report_html(segments("LV dilated, no LGE. Family history of HCM."), best="LV dilated")
    assert "<mark>LV dilated</mark>" in out and "<del title='negated in the report'>no LGE</del>" in out
    assert "Family history of HCM<sup>family</sup>" in out


def test_report_text_is_shown_as_text_never_as_markup():
    text = "![x](http://evil.example/b.png) <img src=x onerror=alert(1)> # HEAD :red[x] \u202eLVEF 35%"
    out = report_html([(text, "affirmed")])
    assert "<img" not in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "\u202e" not in out and "LVEF 35%" in out                     # a direction override is dropped
    assert "![x](http://evil.example/b.png)" in out                      # stays literal: st.html renders no Markdown


def test_a_card_snippet_is_cut_with_an_ellipsis():
    runs = cut_runs([("Dilated LV,  severely impaired. ", "affirmed"), ("No LGE", "negated")], 20)
    assert "".join(p for p, _ in runs) == "Dilated LV, severel…" and runs[-1][1] == "affirmed"
    assert cut_runs([("Short.", "affirmed")], 20) == [("Short.", "affirmed")]

"""`?study=KEY` with a key that is not in the index (a stale or mistyped link): the study page says so in
one st.error line with how to find a study, and raises nothing (issue 22, item 6)."""
from streamlit.testing.v1 import AppTest

from tests.helpers.app_fixtures import APP, goto, result_keys, search, ui_data  # noqa: F401


def _open(ui_data, monkeypatch, study: str) -> AppTest:  # noqa: F811
    monkeypatch.setenv("CMR_DATA", str(ui_data))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["study"] = study
    at.run()
    return at


def test_unknown_study_key_in_the_url_is_one_error_line(ui_data, monkeypatch):  # noqa: F811
    at = _open(ui_data, monkeypatch, "no-such-study")
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]          # shown escaped (safe_text.md)
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert "no-such-study" in errors[0] and "not in this index" in errors[0] and "Search" in errors[0]
    assert [t.value for t in at.title][:1] == ["Study"]
    beacon = _open(ui_data, monkeypatch, "![x](http://evil.example/b.png)")   # a hostile key in a link
    assert beacon.error and all("](" not in e.value.replace("\\]\\(", "") for e in beacon.error)


def test_after_an_unknown_key_a_study_is_chosen_below_or_found_by_search(ui_data, monkeypatch):  # noqa: F811
    at = _open(ui_data, monkeypatch, "no-such-study")
    picker = at.selectbox(key="pick_None")
    assert picker.value is None and "no-such-study" not in picker.options
    picker.set_value(picker.options[0]).run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.session_state.study == picker.options[0] and "Impression" in [s.value for s in at.subheader]
    at = search(goto(at, "Search"))
    key = result_keys(at)[0]
    at.button(key=f"r_open_{key}").click().run()
    assert not at.exception and not at.error and at.session_state.study == key

"""Every button of the workbench has a word for its accessible name (an icon alone is read out as
'thumb_up icon') and the icon-sized ones a tooltip saying what they do."""
import re

from tests.helpers.app_fixtures import app, goto, search, ui_data  # noqa: F401

ICON_ONLY = re.compile(r"^\s*(:material/[a-z_]+:\s*)+$")


def _buttons(at):
    return [*at.button, *at.get("download_button")]


def _check(at) -> None:
    buttons = _buttons(at)
    assert buttons
    for b in buttons:
        label = b.label if hasattr(b, "label") else b.proto.label
        assert label.strip() and not ICON_ONLY.match(label) and ":material/" not in label, (b.key, label)


def test_search_page_buttons_have_names_and_tooltips(app):
    at = search(app)
    _check(at)
    cards = [b for b in at.button if b.key and b.key.startswith("r_")]
    assert cards and all(b.help for b in cards)
    assert {b.label for b in cards} == {"more", "less", "add", "open"}


def test_cohort_and_about_page_buttons_have_names(app):
    at = search(app)
    at.button(key="add_all").click().run()
    _check(goto(at, "Cohort"))
    _check(goto(at, "About"))
    _check(goto(at, "Study"))

"""Negated scopes are removed before a report is embedded (model/negation.py)."""
import pytest

from cmr_search.model.negation import affirmed, affirmed_clauses, affirmed_text, clauses


def test_clauses_split_lists_sentences_and_semicolons():
    text = "1. LV dilated.\n2) RV normal; no LGE.\n- Small effusion"
    assert clauses(text) == ["LV dilated", "RV normal", "no LGE", "Small effusion"]


@pytest.mark.parametrize("clause, kept", [
    ("No late enhancement to suggest remote infarction", ""),
    ("Concentric LV wall thickening, without features of hypertrophic cardiomyopathy",
     "Concentric LV wall thickening"),
    ("Absence of LGE", ""),
    ("nothing to suggest amyloid or myocarditis", ""),
    ("specifically no evidence of prior infarction", ""),
    ("No LGE in the septum but patchy mid-wall LGE laterally", "patchy mid-wall LGE laterally"),
    ("Note is made of LA dilation", "Note is made of LA dilation"),       # "Note" is not the cue "no"
    ("Non-dilated LV with normal function", "Non-dilated LV with normal function"),
])
def test_affirmed_drops_the_negated_scope(clause, kept):
    assert affirmed(clause) == kept


def test_a_report_keeps_what_it_affirms():
    report = ("1. Biventricular size and function are normal.\n"
              "2. No late enhancement; specifically no evidence of previous MI or infiltrative disease such as amyloid.\n"
              "3. Asymmetric septal hypertrophy, without LVOT obstruction.")
    assert affirmed_clauses(report) == ["Biventricular size and function are normal", "Asymmetric septal hypertrophy"]
    assert affirmed_text(report) == "Biventricular size and function are normal. Asymmetric septal hypertrophy."


def test_a_text_that_affirms_nothing_is_kept_whole():
    assert affirmed_text("No LGE.") == "No LGE."
    assert affirmed_clauses("") == [] and affirmed_text("") == ""

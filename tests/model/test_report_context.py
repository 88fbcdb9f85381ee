"""Report text read with medspaCy ConText and the CMR rules (model/report_context.py, model/rules/cmr_context.json)."""
import json

import pytest

from cmr_search.model import report_context as rc
from cmr_search.model.report_context import (Finding, affirmed_clauses, affirmed_text, assertion, clauses,
                                             finding_keys, needs_context, read_findings, segments)


def test_clauses_split_lists_sentences_and_semicolons():
    text = "1. LV dilated.\n2) RV normal; no LGE.\n- Small effusion"
    assert clauses(text) == ["LV dilated", "RV normal", "no LGE", "Small effusion"]


# the report lines issue #20 quotes, and the old module's cases
@pytest.mark.parametrize("clause, kept", [
    ("There is no LGE, mild LV dilatation.", ["mild LV dilatation"]),
    ("No significant change in LV size.", ["No significant change in LV size"]),
    ("Not only dilated but also severely impaired.", ["Not only dilated but also severely impaired"]),
    ("No late enhancement to suggest remote infarction", []),
    ("Concentric LV wall thickening, without features of hypertrophic cardiomyopathy",
     ["Concentric LV wall thickening"]),
    ("Absence of LGE", []),
    ("nothing to suggest amyloid or myocarditis", []),
    ("No LGE in the septum but patchy mid-wall LGE laterally", ["patchy mid-wall LGE laterally"]),
    ("Note is made of LA dilation", ["Note is made of LA dilation"]),       # "Note" is not the cue "no"
    ("Non-dilated LV with normal function", ["Non-dilated LV with normal function"]),
    ("Mid-wall LGE in the basal septum, suggestive of non-ischaemic cardiomyopathy",
     ["Mid-wall LGE in the basal septum, suggestive of non-ischaemic cardiomyopathy"]),   # a hedge is searched
    ("RV free wall hypokinesia", ["RV free wall hypokinesia"]),             # "free" is not "free of"
    ("Mild LV dilatation, unchanged since 2019", ["Mild LV dilatation, unchanged since 2019"]),
])
def test_affirmed_drops_cue_and_scope(clause, kept):
    assert affirmed_clauses(clause) == kept


@pytest.mark.parametrize("text", ["Family history of HCM.", "His brother has HCM.", "LV thrombus excluded.",
                                  "LGE: none.", "No evidence of amyloid."])
def test_negated_and_family_text_is_not_searched(text):
    assert affirmed_clauses(text) == []


@pytest.mark.parametrize("text", ["Possible apical HCM", "Likely amyloid", "Previous MI", "Known HCM"])
def test_hedged_and_historical_text_is_searched(text):
    assert affirmed_clauses(text + ".") == [text]        # their status is kept for criteria (read_findings)


@pytest.mark.parametrize("sentence, target, status", [
    ("There is no LGE, mild LV dilatation.", "LGE", "negated"),
    ("There is no LGE, mild LV dilatation.", "LV dilatation", "affirmed"),
    ("No significant change in LV size.", "LV size", "affirmed"),
    ("Not only dilated but also severely impaired.", "dilated", "affirmed"),
    ("Possible apical HCM.", "HCM", "uncertain"),
    ("Cannot exclude cardiac sarcoidosis.", "cardiac sarcoidosis", "uncertain"),
    ("Findings suggestive of amyloid.", "amyloid", "uncertain"),
    ("Previous MI.", "MI", "historical"),
    ("Known HCM.", "HCM", "historical"),
    ("Family history of HCM.", "HCM", "family"),
    ("His brother has HCM.", "HCM", "family"),
    ("No family history of HCM.", "HCM", "negated"),          # negated > family
    ("possible previous MI", "MI", "uncertain"),              # uncertain > historical
    ("Subendocardial LGE consistent with prior infarction.", "LGE", "affirmed"),
])
def test_assertion(sentence, target, status):
    assert assertion(sentence, target) == status


def test_assertion_needs_the_target_in_the_sentence():
    with pytest.raises(ValueError, match="not in the sentence"):
        assertion("No LGE.", "HCM")


def test_findings_carry_concept_status_and_section():
    report = ("Indication: ?HCM. Family history of sudden cardiac death.\n"
              "Findings: Asymmetric septal hypertrophy. Patchy mid-wall LGE at the RV insertion points. No thrombus.\n"
              "Impression: Features of HCM.")
    found = read_findings(report)
    assert Finding("HCM", "HCM", "uncertain", "indication") in found        # a referral question
    assert Finding("LGE", "LGE", "affirmed", "findings") in found
    assert Finding("THROMBUS", "thrombus", "negated", "findings") in found
    assert Finding("HCM", "HCM", "affirmed", "impression") in found
    keys = finding_keys(report)
    assert {"HCM:affirmed", "HCM:uncertain", "LGE:affirmed", "THROMBUS:negated"} <= set(keys)
    assert read_findings("") == [] and finding_keys("  ") == []


def test_concept_sets_name_synonyms_once():
    keys = finding_keys("Hypertrophic obstructive cardiomyopathy. Late gadolinium enhancement. HOCM. MDE.")
    assert keys == ["HCM:affirmed", "LGE:affirmed"]


def test_a_text_that_keeps_nothing_is_kept_whole():
    assert affirmed_text("No LGE.") == "No LGE."
    assert affirmed_clauses("") == [] and affirmed_text("") == ""


def test_a_text_without_cues_is_read_without_medspacy_and_alike():
    text = "1. Amyloid LGE pattern.\n2. Dilated LV; LVEF 30%"
    assert not needs_context(text)
    fast = affirmed_clauses(text)
    assert fast == rc._kept(rc.reader()(text)) == ["Amyloid LGE pattern", "Dilated LV", "LVEF 30%"]
    assert needs_context("normal LV, no LGE") and needs_context("family history of HCM")


def test_rules_file_is_valid_and_every_rule_loads():
    rules = json.loads(rc.RULES.read_text())
    assert {"context_rules", "target_rules", "section_rules", "drop_default"} <= set(rules)
    nlp = rc.reader()
    assert nlp.pipe_names == ["cmr_clauses", "medspacy_target_matcher", "medspacy_sectionizer", "medspacy_context"]
    cats = {r["category"] for r in rules["context_rules"]}
    assert cats <= set(rc.CATEGORY_STATUS) | {"PSEUDO", "TERMINATE", "CLAUSE_BREAK"}


def test_no_debug_log_reaches_the_terminal(capfd):
    affirmed_clauses("There is no LGE. Possible HCM.")
    out, err = capfd.readouterr()
    assert "DEBUG" not in out + err


@pytest.mark.parametrize("text, marked", [
    ("LV dilated, no LGE.", {"no LGE": "negated"}),
    ("1. No LGE.\n2. Dilated LV.", {"No LGE": "negated"}),
    ("There is no LGE, mild LV dilatation. Family history of HCM. Possible apical HCM.",
     {"no LGE": "negated", "Family history of HCM": "family", "Possible apical HCM": "uncertain"}),
    ("  Normal LV.  ", {}),
])
def test_segments_join_back_and_mark_each_scope(text, marked):
    runs = segments(text)
    assert "".join(p for p, _ in runs) == text
    assert {p.strip(" .,\n"): s for p, s in runs if s != "affirmed"} == marked
    assert segments("") == []


def test_a_common_word_of_a_rule_does_not_send_a_query_to_the_reader():
    """'with' ends 'inconsistent with': the cue pre-filter keys on a rule's most specific word, so a query
    with 'with' and no cue never loads medspaCy (a cold `cmr search` 4.1 s -> 0.8 s), and what the reader
    would drop still goes to it."""
    from cmr_search.model.report_context import affirmed_text, needs_context
    assert not needs_context("dilated LV with reduced ejection fraction")
    assert needs_context("findings inconsistent with amyloid") and needs_context("not associated with LGE")
    assert "amyloid" not in affirmed_text("LV dilated. Findings inconsistent with amyloid.")

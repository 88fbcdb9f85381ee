"""Cohort criteria (search/criteria.py): concept sets, each criterion's exact set on both backends against the
truth of the synthetic rows, AND / OR / NOT, and the JSON form's errors."""
import numpy as np
import pytest

from cmr_search.search.criteria import (All, AnyOf, Evaluator, Not, Report, Semantic, Where, concept_of,
                                        criterion_from)
from cmr_search.search.errors import CohortDefinitionError, QueryError
from tests.helpers.search_helpers import findings, make_rows


def _truth(pred) -> set[str]:
    return {r["study_key"] for r in make_rows() if pred(r)}


def _keys(store, c) -> set[str]:
    return c.evaluate(Evaluator(store)).keys


@pytest.mark.parametrize("term,concept", [("HOCM", "HCM"), ("hypertrophic cardiomyopathy", "HCM"), ("hcm", "HCM"),
                                          ("late gadolinium enhancement", "LGE"), ("scar", "LGE"),
                                          ("cardiac amyloidosis", "AMYLOID"), ("amyloid", "AMYLOID"),
                                          ("nicm", "DCM"), ("lv_dilatation", "LV_DILATATION"), ("infarct", "MI")])
def test_concept_of_resolves_synonyms(term, concept):
    assert concept_of(term) == concept


def test_an_unknown_term_lists_the_concepts():
    with pytest.raises(QueryError, match=r"'banana' is not in any concept set; known concepts: AMYLOID, .*HCM"):
        concept_of("banana")
    with pytest.raises(QueryError, match="expected a word"):
        concept_of("  ")


def test_report_terms_are_status_aware(any_store):
    assert _keys(any_store, Report("LGE")) == _truth(lambda r: "LGE:affirmed" in r["report_findings"])
    assert _keys(any_store, Report("late gadolinium enhancement", status=["negated"])) == \
        _truth(lambda r: "LGE:negated" in r["report_findings"])
    family = _truth(lambda r: "HCM:family" in r["report_findings"])
    assert family and _keys(any_store, Report("HOCM", not_status=["affirmed", "negated"])) == family
    assert _keys(any_store, Report("HCM")) == set()                  # only relatives have HCM in these reports
    assert len(_truth(lambda r: r["report_findings"])) > len(_keys(any_store, Report("LGE")))


def test_report_status_errors():
    with pytest.raises(QueryError, match="status=\\['maybe'\\]"):
        Report("LGE", status=["maybe"])
    with pytest.raises(QueryError, match="not both"):
        Report("LGE", status=["affirmed"], not_status=["negated"])


def test_where_matches_the_payload_exactly(any_store):
    assert _keys(any_store, Where.parse(["lvef<40"])) == _truth(lambda r: r.get("lvef") is not None and r["lvef"] < 40)
    assert _keys(any_store, Where.parse(["age=40..80", "sex=F"])) == _truth(lambda r: 40 <= r["age"] <= 80 and r["sex"] == "F")
    assert _keys(any_store, criterion_from({"filter": {"views": ["lge_sax"]}})) == _truth(lambda r: "lge_sax" in r["views"])


def test_semantic_is_every_study_above_the_cut(any_store):
    rows = make_rows()
    q = np.random.default_rng(3).normal(size=32)
    X = np.stack([r["vectors"]["study"] for r in rows])
    cos = X @ (q / np.linalg.norm(q))
    cut = float(np.sort(cos)[-25]) - 1e-6                             # 25 studies: no top-k limit of 10 or 20
    m = Semantic(None, cut, vector=q.tolist()).evaluate(Evaluator(any_store))
    assert m.keys == {r["study_key"] for r, c in zip(rows, cos) if c >= cut} and len(m.keys) == 25
    got = m.scores["image_cosine"]
    np.testing.assert_allclose([got[r["study_key"]] for r, c in zip(rows, cos) if c >= cut], cos[cos >= cut], atol=1e-5)
    lge = Semantic(None, -1.0, view="lge", vector=q.tolist()).evaluate(Evaluator(any_store))
    assert lge.keys == _truth(lambda r: r["vectors"]["lge"] is not None)      # every study that has the vector


def test_semantic_report_mode_scores_the_report_text_vector(any_store):
    rows = make_rows()
    q = np.random.default_rng(4).normal(size=384)
    m = Semantic(None, 0.0, mode="report", vector=q.tolist()).evaluate(Evaluator(any_store))
    want = {r["study_key"] for r in rows if r["vectors"]["report_text"] is not None
            and float(r["vectors"]["report_text"] @ q) >= 0}
    assert m.keys == want and set(m.scores) == {"report_cosine"}


def test_semantic_text_needs_a_client(any_store):
    with pytest.raises(QueryError, match="needs|client"):
        Semantic("amyloid", 0.2).evaluate(Evaluator(any_store))


def test_and_or_not_are_set_algebra(any_store):
    lge, low = Report("LGE"), Where.parse("lvef<40")
    t_lge = _truth(lambda r: "LGE:affirmed" in r["report_findings"])
    t_low = _truth(lambda r: r.get("lvef") is not None and r["lvef"] < 40)
    everyone = _truth(lambda r: True)
    assert _keys(any_store, All([lge, low])) == t_lge & t_low
    assert _keys(any_store, AnyOf([lge, low])) == t_lge | t_low
    assert _keys(any_store, Not(lge)) == everyone - t_lge
    tree = criterion_from({"all": [{"any": ["lvef<40", {"report": "LGE"}]}, {"not": {"filter": ["sex=F"]}}]})
    assert _keys(any_store, tree) == (t_lge | t_low) - _truth(lambda r: r["sex"] == "F")
    assert criterion_from(tree.to_dict()).to_dict() == tree.to_dict()


def test_findings_helper_is_the_truth_used():
    assert findings(1) == ["LGE:affirmed", "HCM:family"] and findings(0) == []


@pytest.mark.parametrize("d,msg", [
    ({"banana": 1}, "unknown criterion kind \\(keys banana\\); a criterion has exactly one of: text"),
    ({"report": "LGE", "filter": ["sex=F"]}, "unknown criterion kind"),
    ({"report": "LGE", "stat": ["affirmed"]}, "unknown key 'stat' in a report criterion"),
    ({"report": 3}, "report must be a non-empty string"),
    ({"report": "banana"}, "'banana' is not in any concept set"),
    ({"text": "scar"}, "needs min_score"),
    ({"text": "scar", "min_score": "high"}, "min_score='high': expected a number in -1..1"),
    ({"text": "scar", "min_score": 2}, "min_score=2"),
    ({"text": "scar", "min_score": 0.2, "mode": "hybrid"}, "mode='hybrid'"),
    ({"filter": "lvef<40"}, "filter must be a list"),
    ({"filter": ["lvef<<40"]}, "lvef<<40"),
    ({"filter": {"colour": "red"}}, "unknown filter field 'colour'"),
    ({"all": []}, "'all' needs a non-empty list"),
    ({"not": {"report": "LGE", "x": 1}}, "criterion.not: unknown key 'x'"),
    (42, "expected an object"),
])
def test_bad_criteria_say_where_and_why(d, msg):
    with pytest.raises(CohortDefinitionError, match=msg) as e:
        criterion_from(d)
    assert "\n" not in str(e.value) and str(e.value).startswith("criterion")

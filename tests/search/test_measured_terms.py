"""Measurements named by a query (search/measured_terms.py): the phrases, negation, numbers, ranking."""
from cmr_search.search.backends.base import Hit
from cmr_search.search.measured_terms import measured_intents, rank_by_intents


def _fields(text):
    return {(i.field, i.high, i.cut) for i in measured_intents(text)}


def test_the_hero_query_names_a_dilated_lv_and_a_reduced_ef():
    assert _fields("dilated left ventricle with reduced ejection fraction") == {("lvedvi", True, 105.0),
                                                                                ("lvef", False, 50.0)}


def test_phrases_map_to_their_measurement():
    assert _fields("Mildly dilated LV, normal function") == {("lvedvi", True, 105.0), ("lvef", True, 55.0)}
    assert _fields("thick walls") == {("max_wall", True, 12.0)}
    assert _fields("hypertrophic cardiomyopathy") == {("max_wall", True, 12.0)}
    assert _fields("LVH") == {("max_wall", True, 12.0)}
    assert _fields("enlarged right ventricle") == {("rvedvi", True, 115.0)}
    assert _fields("reduced RV function") == {("rvef", False, 45.0)}
    assert _fields("HFrEF") == {("lvef", False, 50.0)}
    assert _fields("LVEF < 35 % with LGE") == {("lvef", False, 35.0)}
    assert _fields("RVEDVi above 150 ml/m2") == {("rvedvi", True, 150.0)}
    assert _fields("dilated RV with reduced RVEF") == {("rvedvi", True, 115.0), ("rvef", False, 45.0)}


def test_negated_or_unrelated_phrases_name_nothing():
    assert _fields("no LV dilation") == set()
    assert _fields("not dilated") == set()
    assert _fields("amyloid LGE pattern") == set()
    assert _fields("LAD territory infarct") == set()


def _hit(key, **payload):
    return Hit(key, 0.0, {"study_key": key, **payload})


def test_ranking_keeps_studies_meeting_every_intent_most_extreme_first():
    intents = measured_intents("dilated LV with reduced EF")
    hits = [_hit("a", lvef=45.0, lvedvi=130.0), _hit("b", lvef=20.0, lvedvi=150.0),
            _hit("c", lvef=60.0, lvedvi=150.0),                      # EF not reduced
            _hit("d", lvef=30.0, lvedv=260.0),                       # no index: LVEDV > 200 ml counts
            _hit("e", lvef=30.0),                                    # size not measured
            _hit("f", lvef=10.0, lvedvi=200.0, seg_quality="poor")]  # masks not trusted
    assert [h.key for h in rank_by_intents(hits, intents)] == ["b", "d", "a"]

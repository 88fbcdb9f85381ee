import pytest

from cmr_search.search import Filter
from cmr_search.search.errors import FilterValueError, UnknownFilterError
from cmr_search.search.filters import as_conditions


def test_filter_compiles_to_neutral_conditions():
    c = Filter(age=(40, 80), sex="f", date=("2019", "2020-06"), vendor="SIEMENS", field_strength=1.5,
               views=["cine_sax", "lge_sax"], labels=["AMYLOID", "HCM"]).conditions()
    assert ("range", "age", 40.0, 80.0) in c.must
    assert ("date", "study_date", "2019-01-01", "2020-06-30") in c.must
    assert ("any", "sex", ["F"]) in c.must and ("any", "manufacturer", ["Siemens"]) in c.must
    assert ("any", "labels", ["AMYLOID", "HCM"]) in c.must
    assert ("any", "views", ["cine_sax"]) in c.must and ("any", "views", ["lge_sax"]) in c.must
    lo, hi = next(x[2:] for x in c.must if x[1] == "field_strength")
    assert lo < 1.5 < hi


def test_unknown_field_lists_the_known_ones():
    with pytest.raises(UnknownFilterError, match="known fields: age, sex, date, vendor"):
        Filter(gender="F")


@pytest.mark.parametrize("kw", [{"age": 40}, {"age": (80, 40)}, {"age": ("a", 3)}, {"date": ("2020", "2019")},
                                {"sex": ""}, {"views": [1]}])
def test_bad_values_are_refused_at_construction(kw):
    with pytest.raises(FilterValueError):
        Filter(**kw)


def test_parse_cli_items():
    f = Filter.parse(["age=40..80", "sex=F", "views=cine_sax,lge_sax", "date=2020", "field_strength=3",
                      "age=..60", "labels=AMYLOID"])
    assert f.fields["age"] == (None, "60") and f.fields["date"] == ("2020", "2020")
    assert f.fields["views"] == ["cine_sax", "lge_sax"] and f.fields["labels"] == ["AMYLOID"]
    assert f.fields["field_strength"] == 3.0
    with pytest.raises(UnknownFilterError):
        Filter.parse(["colour=red"])
    with pytest.raises(FilterValueError, match="key=value"):
        Filter.parse(["sex"])


def test_round_trip_and_combination():
    f = Filter(age=(40, None), sex=["F", "M"], date=("2019", "2020"))
    assert Filter.from_dict(f.to_dict()) == f
    assert (Filter(sex="F") & Filter(age=(1, 2))).fields == {"sex": "F", "age": (1, 2)}


def test_as_conditions_accepts_dicts_and_exclusions():
    c = as_conditions({"sex": "F"}, ["id1"])
    assert c.must == [("any", "sex", ["F"])] and c.exclude_ids == ["id1"]
    assert not as_conditions(None)


def test_measurement_ranges_compile():
    c = Filter(lvef=(None, 35), lv_mass=(150, None), max_wall=(13, 20), rvef=(40, 60), lvedvi=(None, 100),
               seg_quality=["good", "check"]).conditions()
    for cond in (("range", "lvef", None, 35.0), ("range", "lv_mass", 150.0, None), ("range", "max_wall", 13.0, 20.0),
                 ("range", "rvef", 40.0, 60.0), ("range", "lvedvi", None, 100.0),
                 ("any", "seg_quality", ["good", "check"])):
        assert cond in c.must


def test_parse_comparisons():
    f = Filter.parse(["lvef<35", "lv_mass>150", "max_wall=13..20", "rvef>=45", "lvedv<=200", "lvesv=..80",
                      "seg_quality=good"])
    lo, hi = f.fields["lvef"]
    assert lo is None and hi < 35 and hi == pytest.approx(35)                # strict: just below 35
    assert f.fields["lv_mass"][0] > 150 and f.fields["lv_mass"][1] is None
    assert f.fields["max_wall"] == (13.0, 20.0) and f.fields["rvef"] == (45.0, None)
    assert f.fields["lvedv"] == (None, 200.0) and f.fields["lvesv"] == (None, 80.0)
    assert f.fields["seg_quality"] == ["good"]
    assert Filter.parse(["lvef>20", "lvef<=35"]).fields["lvef"][1] == 35.0        # two ends of one field
    assert Filter.parse(["age>=40"]).fields["age"] == (40.0, None)
    assert Filter.parse([" lvef < 35 "]).fields["lvef"][1] < 35
    assert Filter.from_dict(f.to_dict()) == f                                # cohorts save and reload it


@pytest.mark.parametrize("item", ["lvef=35", "lvef<abc", "lvef<", "sex<3", "views>1", "lvef<nan", "lvef=40..30"])
def test_parse_refuses_bad_comparisons(item):
    with pytest.raises(FilterValueError):
        Filter.parse([item])


def test_unknown_measurement_is_named():
    with pytest.raises(UnknownFilterError, match="lvef"):
        Filter.parse(["ejection<35"])


def test_findings_filter_requires_every_key_and_checks_the_form():
    from cmr_search.search.errors import FilterValueError
    c = Filter.parse(["findings=lge:Affirmed,HCM:family"]).conditions()
    assert c.must == [("any", "report_findings", ["LGE:affirmed"]), ("any", "report_findings", ["HCM:family"])]
    for bad in (["findings=LGE"], ["findings=LGE:present"], ["findings=:negated"]):
        with pytest.raises(FilterValueError, match="CONCEPT:status"):
            Filter.parse(bad).conditions()

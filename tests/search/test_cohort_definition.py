"""Cohort definitions (search/cohort_definition.py, search/cohort_result.py) on the synthetic rows: attrition,
patients, one study per patient, both backends alike, save / load / drift, compare, export, bad files."""
import json
import warnings

import numpy as np
import polars as pl
import pytest

from cmr_search.search.cohort import CohortDriftWarning
from cmr_search.search.cohort_definition import CohortDefinition, load_result, read_cohort
from cmr_search.search.cohort_result import CohortResult, compare, small
from cmr_search.search.criteria import Report, Semantic, Where
from cmr_search.search.errors import CohortDefinitionError, QueryError
from tests.helpers.search_helpers import make_rows

ROWS = make_rows()
BY_KEY = {r["study_key"]: r for r in ROWS}
Q = np.random.default_rng(7).normal(size=32)


def _definition(per_patient=None) -> CohortDefinition:
    return CohortDefinition([Where.parse("age=25..75"), Semantic(None, -0.1, vector=Q.tolist()), Report("LGE")],
                            [Where.parse("lvef<30")], per_patient, "test")


def _truth() -> tuple[list[set[str]], dict]:
    """The keys remaining after each step, by hand from the rows."""
    cos = {r["study_key"]: float(r["vectors"]["study"] @ (Q / np.linalg.norm(Q))) for r in ROWS}
    steps = [set(BY_KEY)]
    for pred in (lambda r: 25 <= r["age"] <= 75, lambda r: cos[r["study_key"]] >= -0.1,
                 lambda r: "LGE:affirmed" in r["report_findings"]):
        steps.append({k for k in steps[-1] if pred(BY_KEY[k])})
    steps.append({k for k in steps[-1] if not (BY_KEY[k].get("lvef") is not None and BY_KEY[k]["lvef"] < 30)})
    return steps, cos


def test_attrition_counts_studies_and_patients_at_every_step(any_store):
    res = _definition().run(any_store, count_all=True)
    steps, cos = _truth()
    a = res.attrition
    assert a["kind"].to_list() == ["all", "inclusion", "inclusion", "inclusion", "exclusion"]
    assert a["studies"].to_list() == [len(s) for s in steps]
    assert a["patients"].to_list() == [len({BY_KEY[k]["patient_key"] for k in s}) for s in steps]
    assert len(set(a["studies"].to_list())) == 5                     # every step removes something
    assert set(res.keys) == steps[-1]
    assert res.patient_keys == sorted({BY_KEY[k]["patient_key"] for k in steps[-1]})
    f = res.frame("study")
    assert f["image_cosine"].to_list() == pytest.approx([cos[k] for k in f["study_key"]], abs=1e-5)
    assert {"lvef", "impression", "manufacturer"} <= set(f.columns) and "score" not in f.columns
    p = res.frame("patient")
    assert p["patient_key"].to_list() == res.patient_keys and p["studies"].sum() == len(res.keys)


@pytest.mark.parametrize("how", ["first", "last", "best"])
def test_one_study_per_patient(any_store, how):
    res = _definition(how).run(any_store)
    steps, cos = _truth()
    by_patient: dict[str, list[str]] = {}
    for k in steps[-1]:
        by_patient.setdefault(BY_KEY[k]["patient_key"], []).append(k)
    date = lambda k: BY_KEY[k]["study_date"]  # noqa: E731  YYYYMMDD strings sort as dates
    pick = {"first": lambda ks: min(ks, key=date), "last": lambda ks: max(ks, key=date),
            "best": lambda ks: max(ks, key=cos.get)}[how]
    assert set(res.keys) == {pick(ks) for ks in by_patient.values()}
    assert any(len(ks) > 1 for ks in by_patient.values())           # the pick had something to choose from
    assert res.attrition["kind"][-1] == "per patient" and res.attrition["studies"][-1] == len(by_patient)


def test_both_backends_give_the_same_cohort(edge_ro, memory_ro):
    for how in (None, "first", "best"):
        a, b = _definition(how).run(edge_ro), _definition(how).run(memory_ro)
        assert a.keys == b.keys and a.patient_keys == b.patient_keys
        assert a.attrition.equals(b.attrition)
        np.testing.assert_allclose([a.scores["image_cosine"][k] for k in a.keys],
                                   [b.scores["image_cosine"][k] for k in b.keys], atol=1e-5)


def test_save_load_rerun_and_drift(edge_store, tmp_path):
    res = _definition("first").run(edge_store)
    path = res.save(tmp_path / "r.result.json")
    again = CohortDefinition.load(path)
    assert again.index["points"] == 60
    with warnings.catch_warnings():
        warnings.simplefilter("error")                               # unchanged index: no warning
        rerun = again.run(edge_store)
    assert rerun.patient_keys == res.patient_keys and rerun.keys == res.keys
    loaded = CohortResult.load(path)
    assert loaded.keys == res.keys and loaded.attrition.equals(res.attrition) and loaded.scores == res.scores
    edge_store.delete(["s0001"])
    with pytest.warns(CohortDriftWarning, match="changed index \\(points"):
        again.run(edge_store)


def test_definition_round_trips_through_json_and_yaml(tmp_path):
    d = _definition("best")
    assert CohortDefinition.load(d.save(tmp_path / "d.json")).to_dict() == d.to_dict()
    yaml = pytest.importorskip("yaml")
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(d.to_dict()))
    assert CohortDefinition.load(tmp_path / "d.yaml").to_dict() == d.to_dict()


@pytest.mark.parametrize("level", ["study", "patient"])
def test_compare_union_intersection_difference(memory_store, level):
    a = CohortDefinition([Report("LGE")], name="lge").run(memory_store)
    b = CohortDefinition([Where.parse("lvef<40")], name="low").run(memory_store)
    unit = (lambda r: set(r.keys)) if level == "study" else (lambda r: set(r.patient_keys))
    ua, ub = unit(a), unit(b)
    for op, want in (("union", ua | ub), ("intersection", ua & ub), ("difference", ua - ub)):
        got = compare(a, b, op, level)
        assert unit(got) == want and want
        assert got.attrition["studies"].to_list()[:2] == [len(a.keys), len(b.keys)]
    if level == "patient":                                           # differs from the study-level answer
        assert unit(compare(a, b, "difference", "patient")) != {BY_KEY[k]["patient_key"]
                                                                for k in set(a.keys) - set(b.keys)}


def test_export_writes_rows_and_a_suppressed_attrition_sidecar(memory_store, tmp_path):
    res = CohortDefinition([Report("HCM", status=["family"])], name="fam").run(memory_store, count_all=True)
    assert 0 < len(res.keys) < 11
    out = res.export(tmp_path / "fam.csv", level="patient")
    assert pl.read_csv(out)["patient_key"].to_list() == res.patient_keys
    side = pl.read_csv(tmp_path / "fam.attrition.csv", infer_schema_length=0)
    assert side["studies"].to_list() == ["60", "<11"] and side["patients"].to_list() == ["30", "<11"]
    pq = pl.read_parquet(res.export(tmp_path / "fam.parquet"))
    assert pq["study_key"].to_list() == res.keys and pq["impression"].to_list() == [f"impression {k[1:].lstrip('0')}"
                                                                                     for k in res.keys]
    assert small(0) == "0" and small(10) == "<11" and small(11) == "11"
    with pytest.raises(QueryError, match=".csv or .parquet"):
        res.export(tmp_path / "x.xlsx")


def test_per_patient_best_needs_a_semantic_criterion():
    with pytest.raises(QueryError, match="best.*semantic"):
        CohortDefinition([Report("LGE")], per_patient="best")
    with pytest.raises(QueryError, match="share the score column"):
        CohortDefinition([Semantic(None, 0.1, vector=[1.0]), Semantic(None, 0.2, vector=[1.0])])


GOOD = {"inclusion": [{"report": "LGE"}], "exclusion": []}


@pytest.mark.parametrize("content,msg", [
    ("{not json", "not JSON \\(Expecting property name"),
    (json.dumps({"exclusion": []}), "missing key 'inclusion'"),
    (json.dumps({"inclusion": [{"colour": "red"}]}), "inclusion\\[0\\]: unknown criterion kind"),
    (json.dumps({"inclusion": "LGE"}), "inclusion: expected a list of criteria, got a string 'LGE'"),
    (json.dumps({**GOOD, "per_patient": "oldest"}), "per_patient: expected first, last, best or null, got a string 'oldest'"),
    (json.dumps({**GOOD, "name": 3}), "name: expected a string"),
    (json.dumps({**GOOD, "extra": 1}), "unknown key 'extra'"),
    (json.dumps({**GOOD, "format": "other/1"}), "format: expected 'cmr-search/cohort-definition-1', got a string 'other/1'"),
    (json.dumps([1, 2]), "expected an object"),
    (json.dumps({"inclusion": [], "exclusion": [{"text": "scar", "min_score": "x"}]}), "exclusion\\[0\\]: min_score"),
])
def test_bad_files_get_one_line_naming_the_file(tmp_path, content, msg):
    path = tmp_path / "bad.cohort.json"
    path.write_text(content)
    with pytest.raises(CohortDefinitionError, match=msg) as e:
        read_cohort(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_missing_file_and_bad_saved_result(tmp_path):
    with pytest.raises(CohortDefinitionError, match="nope.json: no such cohort file"):
        CohortDefinition.load(tmp_path / "nope.json")
    bad = tmp_path / "r.result.json"
    bad.write_text(json.dumps({"format": "cmr-search/cohort-result-1", "keys": [1]}))
    with pytest.raises(CohortDefinitionError, match="r.result.json: not a saved cohort result"):
        load_result(bad)


def test_without_count_all_the_first_row_skips_the_index_patients(any_store):
    full, quick = _definition("first").run(any_store, count_all=True), _definition("first").run(any_store)
    assert quick.keys == full.keys and quick.attrition["studies"].to_list() == full.attrition["studies"].to_list()
    assert quick.attrition["patients"][0] is None and full.attrition["patients"][0] == 30
    assert quick.attrition["patients"].to_list()[1:] == full.attrition["patients"].to_list()[1:]
    assert quick.attrition_shown()["studies"][0] == "60"


def test_a_run_and_its_export_are_in_the_audit_trail(edge_store, tmp_path):
    from cmr_search.search.audit import folder_of, read_audit
    res = CohortDefinition([Report("HCM", status=["family"])], name="fam").run(edge_store)
    res.export(tmp_path / "fam.csv", level="patient")
    log = read_audit(folder_of(edge_store))
    assert log["event"].to_list()[-2:] == ["cohort_run", "export"]
    run, export = log.to_dicts()[-2:]
    assert run["results"] == len(res.keys) and "HCM" in run["criteria"] and export["file"] == "fam.csv"
    assert not any(k in line for k in res.keys for line in (folder_of(edge_store) / "audit.jsonl").read_text().splitlines())

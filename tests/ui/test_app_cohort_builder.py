"""The cohort builder (Cohort page, Criteria and Compare tabs) on the indexed synthetic cohort archive
(tests/helpers/cohort_data.py): the README example built in the UI gives the patients Python and
`cmr cohort run` give; attrition table and chart, export, save, open, compare."""
import json
from pathlib import Path

import polars as pl
import pytest

from cmr_search.search import connect
from cmr_search.search.cohort_definition import CohortDefinition
from cmr_search.search.cohort_result import CohortResult
from cmr_search.ui.cli import main
from tests.helpers.app_fixtures import goto, open_session
from tests.helpers.cohort_data import cohort_data

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "cohorts" / "hfref_lge.cohort.json"


@pytest.fixture(scope="module")
def data():
    return cohort_data()


@pytest.fixture
def app(data, monkeypatch):
    return goto(open_session(data, monkeypatch), "Cohort")


def _add(at, part: str, kind: str, label: str, **inputs):
    at.radio(key="cb_part").set_value(part)
    at.text_input(key="cb_label").set_value(label)
    for key, value in inputs.items():
        widget = at.multiselect(key=key) if key == "cb_status" else at.text_input(key=key)
        widget.set_value(value)
    at.button(key=f"cb_add_{kind}").click().run()
    assert not at.exception, at.exception
    assert not at.session_state["cb_error"], at.session_state["cb_error"]
    return at


def _readme_example(at):
    at = _add(at, "inclusion", "filter", "adults 40-80", cb_filter="age=40..80")
    at = _add(at, "inclusion", "filter", "LVEF < 40 %", cb_filter="lvef<40")
    at = _add(at, "inclusion", "report", "LGE affirmed in the report", cb_terms="LGE", cb_status=["affirmed"])
    at = _add(at, "exclusion", "report", "amyloid (affirmed or possible)", cb_terms="amyloid",
              cb_status=["affirmed", "uncertain"])
    at.text_input(key="cb_name_box").set_value("HFrEF with LGE, not amyloid")
    at.selectbox(key="cb_per").set_value("first")
    at.button(key="cb_run").click().run()
    assert not at.exception, at.exception
    return at


def test_readme_example_same_patients_in_ui_python_and_cli(app, data, tmp_path):
    at = _readme_example(app)
    ui = at.session_state["cb_result"]
    with connect(data) as client:
        py = CohortDefinition.load(EXAMPLE).run(client)
    out = tmp_path / "cli.csv"
    assert main(["cohort", "run", str(EXAMPLE), "--data", str(data), "--level", "patient", "--out", str(out)]) == 0
    cli = pl.read_csv(out)["patient_key"].to_list()
    assert ui.patient_keys == py.patient_keys == cli and ui.patient_keys
    assert ui.attrition.equals(py.attrition)
    shown = next(d.value for d in at.dataframe if "criterion" in d.value.columns)
    assert shown["criterion"].to_list()[1:] == ["adults 40-80", "LVEF < 40 %", "LGE affirmed in the report",
                                                "amyloid (affirmed or possible)", "one study per patient (first)"]
    assert "<11" in shown["patients"].to_list()                      # small cells suppressed on the page
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    steps = [c["layer"][0]["encoding"]["y"]["sort"] for c in charts if "layer" in c]
    assert steps and steps[0][1:] == [f"{i}. {c}" for i, c in enumerate(shown["criterion"].to_list()[1:], 1)]


def test_attrition_chart_hides_small_bars():
    from cmr_search.ui.app.builder import attrition_rows
    table = pl.DataFrame({"step": [0, 1, 2], "kind": ["all", "inclusion", "inclusion"],
                          "criterion": ["all", "adults", "LVEF<40"], "studies": [30, 20, 4],
                          "patients": [None, 12, 0]})
    rows = {(r["step"], r["level"]): r for r in attrition_rows(table)}
    assert rows[("0. all", "studies")]["count"] == 30 and rows[("0. all", "patients")]["shown"] == "n/a"
    assert rows[("2. LVEF<40", "studies")]["count"] is None and rows[("2. LVEF<40", "studies")]["shown"] == "<11"
    assert rows[("2. LVEF<40", "patients")]["count"] == 0 and rows[("1. adults", "patients")]["count"] == 12


def test_builder_definition_is_the_readme_file(app):
    at = _readme_example(app)
    ours = CohortDefinition.from_dict({"format": "cmr-search/cohort-definition-1",
                                       "name": at.session_state["cb_name_box"],
                                       "inclusion": at.session_state["cb_inclusion"],
                                       "exclusion": at.session_state["cb_exclusion"], "per_patient": "first"})
    assert ours.to_dict() == CohortDefinition.load(EXAMPLE).to_dict()


def test_export_save_open_and_compare(app, data):
    at = _readme_example(app)
    at.button(key="cb_export").click().run()
    files = [Path(f) for f in at.session_state["cb_files"]]
    assert [f.suffix for f in files] == [".csv", ".parquet"]
    assert (files[0].parent / (files[0].stem + ".attrition.csv")).exists()
    assert pl.read_csv(files[0])["study_key"].to_list() == at.session_state["cb_result"].keys
    at.button(key="cb_save").click().run()
    cohorts = data / "cohorts"
    saved = cohorts / "HFrEF_with_LGE_not_amyloid.cohort.json"
    assert CohortDefinition.load(saved).to_dict() == CohortDefinition.load(EXAMPLE).to_dict()
    assert (cohorts / "HFrEF_with_LGE_not_amyloid.result.json").exists()
    # a second cohort (no exclusion), saved, then compared: difference = the excluded amyloid patients
    at.button(key="cb_rm_exclusion_0").click().run()
    at.text_input(key="cb_name_box").set_value("HFrEF with LGE")
    at.button(key="cb_run").click().run()
    at.button(key="cb_save").click().run()
    wide = CohortResult.load(cohorts / "HFrEF_with_LGE.result.json")
    narrow = CohortResult.load(cohorts / "HFrEF_with_LGE_not_amyloid.result.json")
    at.selectbox(key="cmp_a").set_value("HFrEF_with_LGE.result.json")
    at.selectbox(key="cmp_b").set_value("HFrEF_with_LGE_not_amyloid.result.json")
    at.selectbox(key="cmp_op").set_value("difference")
    at.selectbox(key="cmp_by").set_value("patient")
    at.button(key="cmp_run").click().run()
    assert not at.exception, at.exception
    diff = at.session_state["cmp_result"]
    assert diff.patient_keys == sorted(set(wide.patient_keys) - set(narrow.patient_keys))
    # re-open the saved definition: the builder holds it again
    at.selectbox(key="cb_pick").set_value("HFrEF_with_LGE_not_amyloid.cohort.json")
    at.button(key="cb_open").click().run()
    assert len(at.session_state["cb_exclusion"]) == 1 and at.session_state["cb_per"] == "first"


def test_unknown_term_is_one_line_and_adds_nothing(app):
    at = app
    at.radio(key="cb_part").set_value("inclusion")
    at.text_input(key="cb_terms").set_value("flux capacitor")
    at.button(key="cb_add_report").click().run()
    assert not at.exception
    assert at.session_state["cb_inclusion"] == []
    assert any("not in any concept set" in e.value for e in at.error)

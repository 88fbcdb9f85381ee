"""`cmr cohort run` and `cmr cohort compare` on an indexed synthetic archive (tests/helpers/cohort_data.py):
the README example built in Python and from its file gives the same patients; bad files exit 2 with one line."""
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from cmr_search.search import Store, connect
from cmr_search.search.cohort_definition import CohortDefinition
from cmr_search.search.cohort_result import compare
from cmr_search.search.criteria import Report, Where
from cmr_search.ui.cli import main
from tests.helpers.cohort_data import cohort_data
from tests.search.test_safe_csv import EVIL, FORMULA

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "cohorts" / "hfref_lge.cohort.json"


@pytest.fixture(scope="module")
def data():
    return cohort_data()


def _python_example() -> CohortDefinition:
    """The README example, in Python."""
    return CohortDefinition(name="HFrEF with LGE, not amyloid",
                            inclusion=[Where.parse("age=40..80"), Where.parse("lvef<40"), Report("LGE")],
                            exclusion=[Report("amyloid", status=["affirmed", "uncertain"])],
                            per_patient="first")


def test_readme_example_same_patients_both_ways(data, tmp_path, capsys):
    with connect(data) as client:
        py = _python_example().run(client)
    out = tmp_path / "hfref.csv"
    assert main(["cohort", "run", str(EXAMPLE), "--data", str(data), "--level", "patient", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert pl.read_csv(out)["patient_key"].to_list() == py.patient_keys and py.patient_keys
    assert "attrition" in printed and "LGE affirmed in the report" in printed and "<11" in printed
    side = pl.read_csv(tmp_path / "hfref.attrition.csv", infer_schema_length=0)
    assert side["kind"].to_list() == ["all", "inclusion", "inclusion", "inclusion", "exclusion", "per patient"]
    assert side["studies"][0] == "30" and side["studies"][-1] == "<11"
    saved = json.loads((tmp_path / "hfref.result.json").read_text())
    assert [r["studies"] for r in saved["attrition"]] == py.attrition["studies"].to_list()
    assert saved["index"]["points"] == 30
    # the saved result re-runs (no drift: same patients), also as parquet at study level
    pq = tmp_path / "again.parquet"
    assert main(["cohort", "run", str(tmp_path / "hfref.result.json"), "--data", str(data), "--out", str(pq)]) == 0
    assert sorted(set(pl.read_parquet(pq)["patient_key"])) == py.patient_keys


def test_compare_saved_results_and_files(data, tmp_path, capsys):
    a, b = tmp_path / "a.cohort.json", tmp_path / "b.cohort.json"
    CohortDefinition([Report("LGE")], name="lge").save(a)
    CohortDefinition([Where.parse("lvef<40")], name="low").save(b)
    assert main(["cohort", "run", str(a), "--data", str(data), "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["cohort", "run", str(b), "--data", str(data), "--out", str(tmp_path / "b.csv")]) == 0
    with connect(data) as client:
        ra, rb = CohortDefinition.load(a).run(client), CohortDefinition.load(b).run(client)
    for op in ("union", "intersection", "difference"):
        out = tmp_path / f"{op}.csv"
        assert main(["cohort", "compare", str(tmp_path / "a.result.json"), str(tmp_path / "b.result.json"),
                     "--op", op, "--level", "patient", "--out", str(out)]) == 0
        assert pl.read_csv(out)["patient_key"].to_list() == compare(ra, rb, op, "patient").patient_keys
    out = tmp_path / "mixed.csv"                    # a definition file and a saved result: runs the file
    assert main(["cohort", "compare", str(a), str(tmp_path / "b.result.json"), "--op", "difference",
                 "--data", str(data), "--out", str(out)]) == 0
    assert set(pl.read_csv(out)["study_key"]) == set(ra.keys) - set(rb.keys)
    assert "difference" in capsys.readouterr().out


@pytest.mark.parametrize("content,msg", [
    ("{oops", "not JSON"),
    (json.dumps({"inclusion": [{"smell": "bad"}]}), "inclusion[0]: unknown criterion kind"),
    (json.dumps({"inclusion": [{"text": "scar", "min_score": "high"}]}), "min_score='high'"),
    (json.dumps({"exclusion": []}), "missing key 'inclusion'"),
    (json.dumps({"inclusion": [{"report": "banana"}]}), "'banana' is not in any concept set"),
])
def test_bad_cohort_files_exit_2_with_one_line(data, tmp_path, capsys, content, msg):
    f = tmp_path / "bad.cohort.json"
    f.write_text(content)
    assert main(["cohort", "run", str(f), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cmr cohort: {f}: ") and msg in err and "\n" not in err


def test_missing_file_and_bad_out_exit_2(data, tmp_path, capsys):
    assert main(["cohort", "run", str(tmp_path / "none.json"), "--data", str(data)]) == 2
    assert "none.json: no such cohort file" in capsys.readouterr().err
    assert main(["cohort", "run", str(EXAMPLE), "--data", str(data), "--out", str(tmp_path / "x.xlsx")]) == 2
    assert "--out must end in .csv or .parquet" in capsys.readouterr().err
    assert main(["cohort", "compare", str(EXAMPLE), str(tmp_path / "none.json"), "--op", "union"]) == 2
    assert "none.json: no such cohort file" in capsys.readouterr().err


def test_cohort_export_csv_neutralises_formulas(data, tmp_path):
    """`cmr cohort export`: report, vendor and model texts that a spreadsheet would run as formulas start
    with ' in the CSV; the Parquet keeps them as written; numbers stay numbers (search/safe_csv.py)."""
    copy = tmp_path / "data"
    shutil.copytree(data, copy)                     # the shared folder stays as it is
    with Store.open(copy) as store:
        keys = pl.read_parquet(copy / "cache" / "studies.parquet")["study_key"].to_list()[:len(EVIL)]
        for k, v in zip(keys, EVIL):
            store.set_payload(k, {"impression": v, "manufacturer": v, "model_name": v})
    outs = [tmp_path / "x.csv", tmp_path / "x.parquet"]
    for out in outs:
        assert main(["cohort", "export", "--query", "LGE", "--k", "30", "--data", str(copy), "--out", str(out)]) == 0
    csv, pq = pl.read_csv(outs[0]), pl.read_parquet(outs[1])
    cols = ("impression", "manufacturer", "model_name")
    for k, v in zip(keys, EVIL):
        assert pq.filter(pl.col("study_key") == k).select(cols).row(0) == (v, v, v)
        assert csv.filter(pl.col("study_key") == k).select(cols).row(0) == ("'" + v,) * 3
    assert not any(c.startswith(FORMULA) for col in cols for c in csv[col] if c)
    assert csv["score"].to_list() == pytest.approx(pq["score"].to_list()) and csv.schema["age"] == pl.Float64

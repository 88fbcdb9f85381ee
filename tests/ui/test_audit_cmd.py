"""`cmr audit`, and the audit records of the command lines (`cmr search`, `cmr cohort export | rerun`) and of
the workbench (the cohort page's downloads, the About page's table and CSV download)."""
import json
from pathlib import Path

import polars as pl
import pytest

from tests.helpers.app_fixtures import app, goto, ui_data  # noqa: F401  (fixtures)
from tests.helpers.search_helpers import cli_store


@pytest.fixture(autouse=True)
def _on(monkeypatch):
    monkeypatch.delenv("CMR_AUDIT", raising=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("auditcmd")
    args, rows = cli_store(d)
    link = pl.DataFrame({"study_key": [r["study_key"] for r in rows],           # for --with-identifiers
                         "study_instance_uid": [f"1.2.826.{i}" for i in range(len(rows))]})
    link.write_parquet(d / "data" / "link.parquet")
    return args, d


def _cmr(capsys, *argv):
    from cmr_search.ui.cli import main
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _records(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "audit.jsonl").read_text().splitlines()]


def test_cli_searches_and_exports_are_recorded_and_cmr_audit_shows_them(env, capsys, tmp_path):
    conn, d = env
    data = d / "data"
    assert _cmr(capsys, "search", "cardiac amyloidosis", "--k", "3", "--filter", "sex=F", "--json", *conn)[0] == 0
    rc, out, err = _cmr(capsys, "cohort", "export", "--query", "=dilated LV", "--k", "4", "--out", tmp_path / "c.csv",
                        *conn)
    assert rc == 0, err
    assert _cmr(capsys, "cohort", "rerun", tmp_path / "c.cohort.json", "--out", tmp_path / "again.parquet",
                "--with-identifiers", *conn)[0] == 0
    recs = _records(data)
    assert [r["event"] for r in recs] == ["search", "cohort", "export", "cohort_run", "export"]
    assert recs[0]["filters"] == {"sex": "F"} and recs[0]["results"] == 3 and recs[0]["query"] == "cardiac amyloidosis"
    assert (recs[2]["file"], recs[2]["rows"], recs[2]["level"]) == ("c.csv", 4, "de-identified")
    assert (recs[4]["file"], recs[4]["format"], recs[4]["level"]) == ("again.parquet", "parquet", "identified")
    text = (data / "audit.jsonl").read_text()
    assert str(tmp_path) not in text and "1.2.826." not in text          # no folder, no identifier
    assert pl.read_parquet(tmp_path / "again.parquet")["study_instance_uid"].null_count() == 0    # they were joined

    rc, out, _ = _cmr(capsys, "audit", "--data", data)
    assert rc == 0 and "5 of 5 records" in out and "cohort_run" in out and "again.parquet" in out
    rc, out, _ = _cmr(capsys, "audit", "--data", data, "--kind", "export", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [r["file"] for r in rows] == ["c.csv", "again.parquet"]
    rc, out, _ = _cmr(capsys, "audit", "--data", data, "--kind", "search", "--kind", "cohort", "--last", "1", "--json")
    assert rc == 0 and [json.loads(line)["event"] for line in out.splitlines()] == ["cohort"]
    rc, out, _ = _cmr(capsys, "audit", "--data", data, "--since", "2999-01-01")
    assert rc == 0 and "no audit records" in out
    rc, out, _ = _cmr(capsys, "audit", "--data", data, "--out", tmp_path / "audit.csv")
    csv = pl.read_csv(tmp_path / "audit.csv")
    assert rc == 0 and csv.height == 5 and csv["query"][1] == "'=dilated LV"        # no spreadsheet formula
    rc, _, _ = _cmr(capsys, "audit", "--data", data, "--kind", "export", "--out", tmp_path / "audit.parquet")
    assert rc == 0 and pl.read_parquet(tmp_path / "audit.parquet")["rows"].to_list() == [4, 4]


def test_cmr_audit_bad_usage(env, capsys, tmp_path):
    conn, d = env
    assert _cmr(capsys, "audit", "--data", d / "data", "--out", tmp_path / "a.xlsx")[0] == 2
    rc, _, err = _cmr(capsys, "audit", "--data", d / "data", "--since", "last tuesday")
    assert rc == 2 and "2025-03-01" in err
    assert _cmr(capsys, "audit", "--data", d / "data", "--kind", "nope")[0] == 2
    rc, out, _ = _cmr(capsys, "audit", "--data", tmp_path / "empty")
    assert rc == 0 and "no audit records" in out


def test_workbench_download_and_about_page(app, ui_data):  # noqa: F811  (the fixtures above)
    from cmr_search.ui.app.screens.cohort import _downloaded
    log = ui_data / "audit.jsonl"
    n = len(log.read_text().splitlines()) if log.exists() else 0
    _downloaded({"query": "dilated LV", "mode": "hybrid", "k": 20, "filters": {"sex": "F"},
                 "feedback": {"positive": ["k1"], "negative": []}}, 7, "dilated_LV.csv")
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(recs) == n + 1 and (recs[-1]["event"], recs[-1]["rows"], recs[-1]["file"]) == ("export", 7, "dilated_LV.csv")
    assert "k1" not in json.dumps(recs[-1])                          # the basket's feedback keys stay out
    at = goto(app, "About")
    table = next(df.value for df in at.dataframe if "event" in df.value.columns)
    assert table["event"].iloc[0] == "export" and table["file"].iloc[0] == "dilated_LV.csv"   # newest first
    assert "dl_audit" in {b.key for b in at.get("download_button")}

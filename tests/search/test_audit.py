"""The audit trail (search/audit.py): one record per search, cohort run and export, with the right fields and
never a study key; safe appends from several processes; never fails the work it records; off with
CMR_AUDIT=0; created 0600."""
import json
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cmr_search.search import Cohort, Filter, audit
from cmr_search.search.errors import QueryError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _on(monkeypatch):
    monkeypatch.delenv("CMR_AUDIT", raising=False)          # the default: on
    monkeypatch.setattr(audit, "_warned", False)


def _log(client) -> Path:
    return client.settings.folder.audit_log


def _lines(client) -> list[dict]:
    p = _log(client)
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def _one_more(client, before: int) -> dict:
    recs = _lines(client)
    assert len(recs) == before + 1, recs[before:]
    return recs[-1]


def _all_keys(client) -> list[str]:
    return [h.key for h in client.store.scroll()]


def test_every_query_and_export_writes_one_record(aligned_client, tmp_path):
    c = aligned_client
    c.search("cardiac  amyloidosis", k=5, filters=Filter(sex="F", age=(40, 90)), mode="hybrid")
    r = _one_more(c, 0)
    assert {k: r[k] for k in ("event", "ok", "query", "mode", "view", "k", "results")} == {
        "event": "search", "ok": True, "query": "cardiac amyloidosis", "mode": "hybrid", "view": "study", "k": 5,
        "results": 5}
    assert r["filters"] == {"sex": "F", "age": [40, 90]} and r["collection"] == "cmr_studies"
    assert r["backend"] == "embedded" and r["model_id"].startswith("cmr-tiny:") and r["user"] and r["host"]
    assert r["time"].endswith("+00:00") and r["uid"] == os.getuid()

    key = c.search("normal heart", k=3, mode="image")["study_key"][0]
    assert _one_more(c, 1)["mode"] == "image"
    c.similar(key, k=4, view="cine")
    r = _one_more(c, 2)
    assert (r["event"], r["target"], r["view"], r["k"], r["results"]) == ("similar", "study", "cine", 4, 4)
    c.similar(np.asarray(c.store.vectors_of([key], "study")[0]), k=2)
    assert _one_more(c, 3)["target"] == "vector"
    c.reports_for(key, k=2)
    assert _one_more(c, 4)["event"] == "reports_for"
    keys = _all_keys(c)
    c.refine(positive=keys[:2], negative=keys[2:3], k=5, query="septal hypertrophy")
    r = _one_more(c, 5)
    assert (r["event"], r["positives"], r["negatives"], r["query"], r["results"]) == (
        "refine", 2, 1, "septal hypertrophy", 5)
    c.label({"amyloid": ["cardiac amyloidosis", "amyloid heart"], "normal": ["normal heart"]})
    r = _one_more(c, 6)
    assert (r["event"], r["labels"], r["write"], r["results"]) == ("label", {"amyloid": 2, "normal": 1}, False, 30)

    co = c.cohort("dilated cardiomyopathy", k=6, filters={"sex": "M"})      # one record, not cohort + search
    r = _one_more(c, 7)
    assert (r["event"], r["query"], r["k"], r["results"], r["filters"]) == (
        "cohort", "dilated cardiomyopathy", 6, 6, {"sex": "M"})
    (tmp_path / "out").mkdir()
    saved = co.save(tmp_path / "out" / "c.cohort.json")
    assert len(_lines(c)) == 8                                        # saving a spec is not an export
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = Cohort.load(saved).rerun(c)
    r = _one_more(c, 8)
    assert (r["event"], r["query"], r["results"], r["mode"]) == ("cohort_run", "dilated cardiomyopathy", 6, "hybrid")

    co.export(tmp_path / "out" / "dcm.csv")
    r = _one_more(c, 9)
    assert {k: r[k] for k in ("event", "rows", "level", "format", "file", "query", "k")} == {
        "event": "export", "rows": 6, "level": "de-identified", "format": "csv", "file": "dcm.csv",
        "query": "dilated cardiomyopathy", "k": 6}
    assert str(tmp_path) not in _log(c).read_text()                  # the file's name, never its folder
    link = tmp_path / "link.parquet"
    pl.DataFrame({"study_key": co.keys, "study_instance_uid": ["1.2.3"] * 6}).write_parquet(link)
    again.export(tmp_path / "out" / "dcm.parquet", link=link)
    r = _one_more(c, 10)
    assert (r["level"], r["format"], r["event"]) == ("identified", "parquet", "export")
    Cohort.load(tmp_path / "out" / "c.cohort.json").export(tmp_path / "out" / "loaded.csv", client=c)
    assert _one_more(c, 11)["file"] == "loaded.csv"

    text = _log(c).read_text()
    assert not [k for k in keys if k in text]                        # never a study (or patient) key
    assert "1.2.3" not in text
    frame = audit.read_audit(c.settings.data)
    assert frame.height == 12 and frame["event"].to_list()[-5:] == ["cohort", "cohort_run", "export", "export", "export"]


def test_a_failed_query_is_recorded_and_still_raises(aligned_client):
    with pytest.raises(QueryError):
        aligned_client.search("   ")
    with pytest.raises(QueryError):
        aligned_client.search("heart", mode="nonsense")
    recs = _lines(aligned_client)
    assert [(r["event"], r["ok"], r["error"]) for r in recs] == [("search", False, "QueryError")] * 2
    assert recs[1]["mode"] == "nonsense" and "query" not in recs[0]                # blank: nothing to keep


def test_cmr_audit_0_turns_it_off(aligned_client, monkeypatch):
    for off in ("0", "false", "OFF"):
        monkeypatch.setenv("CMR_AUDIT", off)
        aligned_client.search("normal heart", k=2)
        aligned_client.cohort("normal heart", k=2)
    assert not _log(aligned_client).exists()
    monkeypatch.setenv("CMR_AUDIT", "1")
    aligned_client.search("normal heart", k=2)
    assert len(_lines(aligned_client)) == 1


def test_created_0600_whatever_the_umask(tmp_path):
    old = os.umask(0o277)                     # would make it 0400: unwritable by its owner
    try:
        assert audit.record(tmp_path, "search", query="a")
    finally:
        os.umask(old)
    path = tmp_path / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = os.umask(0)                         # would make it 0666
    try:
        path.unlink()
        assert audit.record(tmp_path, "search", query="b") and stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    path.chmod(0o640)                          # an existing file keeps the mode its owner gave it
    assert audit.record(tmp_path, "search", query="c") and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_where_records_go(aligned_client, memory_store, tmp_path):
    data = aligned_client.settings.data
    assert audit.folder_of(aligned_client) == data == audit.folder_of(aligned_client.settings)
    assert audit.folder_of(aligned_client.store) == data                  # an embedded Store: DATA/index's parent
    assert audit.folder_of(memory_store) is None and audit.folder_of(None) is None
    assert audit.folder_of(tmp_path / "missing") is None and audit.folder_of(str(tmp_path)) == tmp_path


def test_a_missing_data_folder_writes_nothing_and_the_search_goes_on(aligned_client, tmp_path, capsys):
    aligned_client.settings = aligned_client.settings.with_(data=tmp_path / "missing", url="http://x:6333")
    assert aligned_client.search("normal heart", k=2).height == 2     # a server client with no data folder
    assert not (tmp_path / "missing").exists() and capsys.readouterr().err == ""


def test_an_unwritable_log_warns_once_and_never_fails_the_search(aligned_client, capsys):
    _log(aligned_client).mkdir()              # the log path cannot be opened for writing (even by root)
    for _ in range(3):
        assert aligned_client.search("normal heart", k=2).height == 2
    co = aligned_client.cohort("normal heart", k=2)
    co.export(aligned_client.settings.data / "x.csv")
    err = capsys.readouterr().err
    assert err.count("audit log") == 1 and "go on without it" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_data_folder_does_not_fail_the_search(aligned_client, capsys):
    data = aligned_client.settings.data
    data.chmod(0o555)
    try:
        assert aligned_client.search("normal heart", k=2).height == 2
    finally:
        data.chmod(0o755)
    assert "audit log" in capsys.readouterr().err and not _log(aligned_client).exists()


_WRITER = """
import sys
from cmr_search.search import audit
data, tag = sys.argv[1], sys.argv[2]
for i in range(int(sys.argv[3])):
    assert audit.record(data, "search", query=f"{tag} {i} " + tag * 1900, criteria={"pad": tag * 4000})
"""


def test_concurrent_appends_from_two_processes_give_whole_lines(tmp_path):
    n = 150                                    # lines of about 6 kB: more than a pipe's atomic write
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), tag, str(n)], cwd=ROOT)
             for tag in ("a", "b")]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2 * n
    recs = [json.loads(line) for line in lines]                       # each a whole JSON object
    for tag in ("a", "b"):
        mine = [int(r["query"].split()[1]) for r in recs if r["query"].startswith(tag + " ")]
        assert mine == list(range(n))                                 # in order, none lost or torn
        assert all(r["criteria"] == {"pad": tag * 4000} for r in recs if r["query"].startswith(tag + " "))
    assert len(audit.read_audit(tmp_path)) == 2 * n


def test_read_filter_and_export(tmp_path):
    audit.record(tmp_path, "search", query="=HYPERLINK(1)", k=3, results=3, filters={"sex": "F"})
    audit.record(tmp_path, "export", **audit.export_fields({"query": "x", "k": 2, "filters": {}}, rows=2,
                                                             file=tmp_path / "deep" / "x.parquet"))
    with open(tmp_path / "audit.jsonl", "a") as fh:
        fh.write('{"time": "2020-01-01T00:00:00+00:00", "event": "search", "query": "old", "k": "not a number"}\n')
        fh.write('{"torn": \n')                                       # a torn line is skipped
    frame = audit.read_audit(tmp_path)
    assert frame.height == 3 and frame.schema["time"] == pl.Datetime("us", "UTC") and frame["k"][2] is None
    assert audit.read_audit(tmp_path, kind="export")["file"].to_list() == ["x.parquet"]
    assert audit.read_audit(tmp_path, since="2021-06-01")["query"].to_list() == ["=HYPERLINK(1)", "x"]
    assert audit.read_audit(tmp_path, kind=["search"], since="2019-12-31").height == 2
    with pytest.raises(QueryError, match="2025-03-01"):
        audit.read_audit(tmp_path, since="yesterday")
    csv = pl.read_csv(audit.export_audit(tmp_path, tmp_path / "a.csv"))
    assert csv["query"][0] == "'=HYPERLINK(1)" and json.loads(csv["filters"][0]) == {"sex": "F"}
    pq = pl.read_parquet(audit.export_audit(tmp_path, tmp_path / "a.parquet", kind="search"))
    assert pq["query"].to_list() == ["=HYPERLINK(1)", "old"]
    with pytest.raises(QueryError, match=".csv or .parquet"):
        audit.export_audit(tmp_path, tmp_path / "a.xlsx")
    assert audit.read_audit(tmp_path / "nothing").height == 0

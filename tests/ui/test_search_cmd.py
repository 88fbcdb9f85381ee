"""`cmr search | similar | label | cohort` end to end on a small embedded index and a saved checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest


from tests.helpers.search_helpers import CLASSES, cli_store  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("searchcmd")
    return cli_store(d)[0], d


def _cmr(capsys, *argv):
    from cmr_search.ui.cli import main
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_search_prints_a_table_and_json(env, capsys):
    conn, _ = env
    rc, out, _ = _cmr(capsys, "search", "cardiac amyloidosis", "--k", "3", *conn)
    assert rc == 0 and "study_key" in out and out.count("amyloid-") >= 2
    rc, out, _ = _cmr(capsys, "search", "cardiac amyloidosis", "--k", "3", "--mode", "hybrid",
                      "--filter", "sex=F", "--json", *conn)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and len(rows) == 3 and all(r["sex"] == "F" for r in rows)
    assert all(r["study_key"].startswith("amyloid") for r in rows)


def test_search_filter_on_measurements(env, capsys):
    conn, _ = env
    rc, out, _ = _cmr(capsys, "search", "cardiomyopathy", "--k", "20", "--filter", "lvef<35", "--json", *conn)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and rows and all(r["lvef"] < 35 and r["study_key"].startswith("nicm") for r in rows)
    rc, out, _ = _cmr(capsys, "search", "hypertrophy", "--k", "5", "--filter", "max_wall=13..20", *conn)
    assert rc == 0 and "LVEF" in out and out.count("hcm-") >= 1
    rc, _, err = _cmr(capsys, "search", "x", "--filter", "lvef=35", *conn)
    assert rc == 2 and "lvef<35" in err


def test_bad_usage_exits_2_with_one_line(env, capsys):
    conn, _ = env
    rc, _, err = _cmr(capsys, "search", "scar", "--filter", "gender=F", *conn)
    assert rc == 2 and "known fields: age, sex" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cmr(capsys, "similar", "no-such-key", *conn)
    assert rc == 2 and "no study with key" in err


def test_missing_checkpoint_is_a_one_line_failure(env, capsys, monkeypatch, tmp_path):
    _, d = env
    monkeypatch.delenv("CMR_CHECKPOINT", raising=False)
    rc, _, err = _cmr(capsys, "search", "scar", "--data", str(d / "data"))
    assert rc == 1 and "no model checkpoint" in err
    rc, _, err = _cmr(capsys, "search", "scar", "--data", str(tmp_path))
    assert rc == 1 and "no index at" in err


def test_similar_and_reports(env, capsys):
    conn, _ = env
    rc, out, _ = _cmr(capsys, "similar", "hcm-0", "--k", "2", "--json", *conn)
    keys = [json.loads(line)["study_key"] for line in out.splitlines()]
    assert rc == 0 and len(keys) == 2 and "hcm-0" not in keys
    rc, out, _ = _cmr(capsys, "similar", "hcm-0", "--reports", "--k", "2", *conn)
    assert rc == 0 and "impression" in out


def test_label_then_cohort_export_and_rerun(env, capsys, tmp_path):
    conn, _ = env
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({c: [t] for c, t in CLASSES.items()}))
    rc, out, _ = _cmr(capsys, "label", "--prompts", str(prompts), "--write", *conn)
    assert rc == 0 and out.startswith("labeled 30 studies")
    rc, out, _ = _cmr(capsys, "cohort", "export", "--query", "ischemic scar", "--k", "5",
                      "--filter", "labels=ICM", "--out", str(tmp_path / "icm.csv"), *conn)
    assert rc == 0 and (tmp_path / "icm.cohort.json").exists()
    first = pl.read_csv(tmp_path / "icm.csv")
    assert first.height == 5 and set(first["labels"]) == {"ICM"}
    rc, _, _ = _cmr(capsys, "cohort", "rerun", str(tmp_path / "icm.cohort.json"), "--out",
                    str(tmp_path / "again.parquet"), *conn)
    assert rc == 0 and pl.read_parquet(tmp_path / "again.parquet")["study_key"].to_list() == first["study_key"].to_list()


def test_help_lists_the_search_verbs(capsys):
    rc, out, _ = _cmr(capsys, "--help")
    assert rc == 0 and all(v in out for v in ("search", "similar", "label", "cohort"))


def test_cohort_with_identifiers_joins_the_data_folders_link_table(env, capsys, tmp_path):
    conn, d = env
    link = d / "data" / "link.parquet"
    rc, _, err = _cmr(capsys, "cohort", "export", "--query", "scar", "--k", "2", "--with-identifiers",
                      "--out", str(tmp_path / "c.csv"), *conn)
    assert rc == 1 and f"no link table at {link}" in err
    pl.DataFrame({"study_key": [f"{c.lower()}-{i}" for c in CLASSES for i in range(10)],
                  "accession": ["A"] * 10 * len(CLASSES)}).write_parquet(link)
    try:
        rc, _, _ = _cmr(capsys, "cohort", "export", "--query", "scar", "--k", "2", "--with-identifiers",
                        "--out", str(tmp_path / "c.csv"), *conn)
    finally:
        link.unlink()
    assert rc == 0 and "accession" in pl.read_csv(tmp_path / "c.csv").columns


def test_flags_make_one_settings(monkeypatch, tmp_path):
    from cmr_search.ui.search_cmd import build_parser, settings_from
    monkeypatch.setenv("QDRANT_URL", "https://env:6333")
    monkeypatch.setenv("CMR_CHECKPOINT", "/env/ckpt")
    s = settings_from(build_parser().parse_args(["q", "--data", str(tmp_path), "--checkpoint", "c"]))
    assert s.data == tmp_path and s.url is None and s.checkpoint == "c" and s.env_checkpoint == "/env/ckpt"
    s = settings_from(build_parser().parse_args(["q", "--api-key", "k", "--insecure"]))
    assert s.url == "https://env:6333" and s.api_key == "k" and s.insecure


def test_a_cold_search_loads_neither_torch_nor_onnx_runtime(env):
    """One query per process: the numpy text path (no torch, no ONNX Runtime set-up) answers it."""
    conn, _ = env
    code = ("import sys; from cmr_search.ui.cli import main; rc = main(sys.argv[1:]); "
            "print('LOADED', sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules), rc)")
    res = subprocess.run([sys.executable, "-c", code, "search", "dilated LV, reduced EF", "--k", "2", *conn],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr
    assert "LOADED [] 0" in res.stdout

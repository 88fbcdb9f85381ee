"""Errors a user can cause with `cmr cohort` are ONE line on stderr naming the file (and the JSON path of the
bad part, with what is expected) and a non-zero exit, never a traceback (issue 22, item 6): a malformed
saved cohort given to `rerun` (not JSON, a wrong type, a missing key, an unknown key), a malformed cohort
definition given to `run` (JSON or YAML), and --out in a folder that does not exist."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmr_search.ui.cli import main
from tests.helpers.cohort_data import cohort_data

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "cohorts" / "hfref_lge.cohort.json"


@pytest.fixture(scope="module")
def data():
    return cohort_data()


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory) -> dict:
    """A good saved query cohort (`cmr cohort export`), as a dict to spoil."""
    out = tmp_path_factory.mktemp("saved") / "lge.csv"
    assert main(["cohort", "export", "--query", "LGE", "--k", "5", "--data", str(data), "--out", str(out)]) == 0
    return json.loads(out.with_suffix(".cohort.json").read_text())


def _one_line(capsys, path: Path, *wanted: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in captured.err + captured.out
    assert "\n" not in err and err.startswith(f"cmr cohort: {path}: "), err
    for w in wanted:
        assert w in err, err
    return err


def _spoiled(saved: dict, key: str, value) -> str:
    d = {k: v for k, v in saved.items() if k != key}
    return json.dumps(d if value is ... else {**d, key: value})


@pytest.mark.parametrize("spoil,wanted", [
    (lambda s: '{"format": "cmr-search/cohort-1", "query": ', ("not JSON (", "at line 1, column")),
    (lambda s: _spoiled(s, "k", "ten"), ("k: expected a whole number of at least 1", "got a string 'ten'")),
    (lambda s: _spoiled(s, "keys", "s0001"), ("keys: expected a list of study keys",)),
    (lambda s: _spoiled(s, "index", [1]), ("index: expected an object",)),
    (lambda s: _spoiled(s, "query", ...), ("missing key 'query'",)),
    (lambda s: _spoiled(s, "colour", "red"), ("unknown key 'colour'", "known: format, query")),
    (lambda s: json.dumps({"inclusion": []}), ("not a saved query cohort", "cmr cohort run FILE")),
])
def test_rerun_of_a_bad_saved_cohort_is_one_line(data, saved, tmp_path, capsys, spoil, wanted):
    f = tmp_path / "bad.cohort.json"
    f.write_text(spoil(saved))
    out = tmp_path / "again.csv"
    assert main(["cohort", "rerun", str(f), "--out", str(out), "--data", str(data)]) == 2
    _one_line(capsys, f, *wanted)
    assert not out.exists()


@pytest.mark.parametrize("name,content,wanted", [
    ("bad.json", '{"inclusion": [', ("not JSON (", "line 1, column 16")),
    ("bad.json", json.dumps({"inclusion": "lvef<40"}), ("inclusion: expected a list of criteria",)),
    ("bad.json", json.dumps({"inclusion": [{"status": ["affirmed"]}]}), ("inclusion[0]: unknown criterion kind",)),
    ("bad.json", json.dumps({"inclusion": [], "colour": "red"}), ("unknown key 'colour'; known: format",)),
    ("bad.json", json.dumps({"inclusion": [{"all": [{"report": "LGE", "stat": 1}]}]}),
     ("inclusion[0].all[0]: unknown key 'stat'",)),
    ("bad.yaml", "inclusion: [\n  - a", ("not YAML (", "line 2, column")),
    ("bad.yaml", "inclusion: 3\n", ("inclusion: expected a list of criteria, got a whole number 3",)),
    ("bad.yaml", "inclusion: []\nname: 2020-01-01\n", ("name: expected a string",)),
])
def test_run_of_a_bad_definition_is_one_line(data, tmp_path, capsys, name, content, wanted):
    f = tmp_path / name
    f.write_text(content)
    assert main(["cohort", "run", str(f), "--data", str(data)]) == 2
    _one_line(capsys, f, *wanted)


def _missing_out_args(data: Path, out: Path, saved_file: Path) -> list[list[str]]:
    conn = ["--data", str(data), "--out", str(out)]
    return [["cohort", "export", "--query", "LGE", "--k", "5", *conn],
            ["cohort", "rerun", str(saved_file), *conn],
            ["cohort", "run", str(EXAMPLE), *conn],
            ["cohort", "compare", str(EXAMPLE), str(EXAMPLE), "--op", "union", *conn]]


def test_out_in_a_missing_folder_is_one_line_saying_to_create_it(data, saved, tmp_path, capsys):
    spec = tmp_path / "good.cohort.json"
    spec.write_text(json.dumps(saved))
    out = tmp_path / "missing_dir" / "x.csv"
    for argv in _missing_out_args(data, out, spec):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert "Traceback" not in captured.err and "\n" not in err, err
        assert f"the folder {out.parent} does not exist" in err and "create it" in err, err
    assert not out.parent.exists()


def test_the_real_command_prints_no_traceback(data, tmp_path):
    """The same through `python -m cmr_search.ui.cli` (what `cmr` runs): stderr is the one line."""
    f = tmp_path / "bad.cohort.json"
    f.write_text('{"format": "cmr-search/cohort-1", "keys": ')
    r = subprocess.run([sys.executable, "-m", "cmr_search.ui.cli", "cohort", "rerun", str(f), "--out",
                        str(tmp_path / "x.csv"), "--data", str(data)], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith(f"cmr cohort: {f}: not JSON (") and r.stderr.count("\n") == 1, r.stderr

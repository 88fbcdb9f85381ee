"""`cmr duplicates`: near-duplicate pairs by study_key with their cosine; exit codes."""
import json

import pytest

from tests.helpers.search_helpers import make_rows


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from cmr_search.search import Store
    d = tmp_path_factory.mktemp("dupcmd") / "data"
    rows = make_rows(n=16)
    rows[9]["vectors"] = dict(rows[4]["vectors"])              # one study imported twice under another key
    rows[9]["patient_key"] = rows[4]["patient_key"]
    with Store.open(d, dim=32) as s:
        s.upsert_studies(rows)
    return d


def _cmr(capsys, *argv):
    from cmr_search.ui.cli import main
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_lists_pairs_by_study_key(data, capsys):
    rc, out, err = _cmr(capsys, "duplicates", "--data", str(data))
    assert rc == 0 and out.splitlines()[0].startswith("1 near-duplicate pairs (cosine >= 0.98")
    assert out.splitlines()[1].split()[:3] == ["s0004", "s0009", "1.0000"] and "same patient" in out
    assert "p0002" not in out                                # never the patient key itself
    rc, out, _ = _cmr(capsys, "duplicates", "--json", "--threshold", "0.5", "--k", "3", "--data", str(data))
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and rows[0] == {"study_key_a": "s0004", "study_key_b": "s0009",
                                   "cosine": pytest.approx(1.0, abs=1e-5), "same_patient": True}
    assert all(r["study_key_a"] < r["study_key_b"] for r in rows)


def test_saturated_neighbours_are_noted(data, capsys):
    rc, out, err = _cmr(capsys, "duplicates", "--threshold", "-1", "--k", "1", "--data", str(data))
    assert rc == 0 and "raise k" in err and err.startswith("cmr duplicates: note:")


def test_bad_usage_exits_2(data, capsys, tmp_path):
    rc, _, err = _cmr(capsys, "duplicates", "--threshold", "2", "--data", str(data))
    assert rc == 2 and "threshold=2" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cmr(capsys, "duplicates", "--k", "0", "--data", str(data))
    assert rc == 2
    rc, _, err = _cmr(capsys, "duplicates", "--view", "nope", "--data", str(data))
    assert rc == 2
    rc, _, err = _cmr(capsys, "duplicates", "--data", str(tmp_path / "none"))
    assert rc == 1 and "no index at" in err

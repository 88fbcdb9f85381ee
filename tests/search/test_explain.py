"""Why a hit (search/explain.py): the impression's status runs, the indexed clauses paired with their stored
vectors and ranked by cosine with the query, the image views' cosines, the report's findings."""
import numpy as np
import pytest

from cmr_search.search import Store, connect
from cmr_search.search.explain import explain, indexed_clauses
from tests.helpers.search_helpers import report_row

REPORT = "Dilated LV with severely reduced systolic function, no LGE. Family history of HCM. Small pericardial effusion."


@pytest.fixture
def client(tmp_path, aligned_template, tiny_model):
    import shutil
    shutil.copytree(aligned_template, tmp_path / "data")
    with Store.open(tmp_path / "data") as s:
        s.upsert_studies([report_row("dcm-1", REPORT, tiny_model.embed_dim, seed=4, views_vectors=("cine",))])
    c = connect(tmp_path / "data", model=tiny_model)
    yield c
    c.close()


def test_the_best_clause_is_the_one_the_query_names(client):
    why = explain(client, "dcm-1", "pericardial effusion")
    assert why.best_clause == "Small pericardial effusion"
    assert sorted(t for t, _ in why.clauses) == sorted(indexed_clauses(REPORT))   # one score per stored clause
    assert why.clauses[0][1] > why.clauses[-1][1] and -1 <= why.clauses[-1][1] <= 1
    assert "HCM" not in " ".join(t for t, _ in why.clauses)          # a relative's disease is not indexed text
    why2 = explain(client, "dcm-1", "dilated left ventricle, reduced function")
    assert why2.best_clause.startswith("Dilated LV")


def test_segments_mark_negated_and_family_parts_and_join_back(client):
    why = explain(client, "dcm-1", "dilated LV")
    assert "".join(p for p, _ in why.segments) == REPORT
    status = {p.strip(" .,"): s for p, s in why.segments if s != "affirmed"}
    assert status == {"no LGE": "negated", "Family history of HCM": "family"}
    assert {"LGE:negated", "HCM:family", "EFFUSION:affirmed"} <= set(why.findings)


def test_views_are_cosines_of_the_vectors_the_study_has(client):
    why = explain(client, "dcm-1", "dilated LV")
    assert set(why.views) == {"study", "cine"}                      # no LGE vector for this study
    q = client.encode_query("dilated LV")
    study = np.asarray(client.store.vectors_of(["dcm-1"], "study")[0])
    assert why.views["study"] == pytest.approx(float(study @ q / np.linalg.norm(study) / np.linalg.norm(q)), abs=1e-3)
    assert why.best_view in ("study", "cine")

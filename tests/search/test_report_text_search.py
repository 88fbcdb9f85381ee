"""Text -> report search ranks by the report-text vectors (whole affirmed report + best clause + BM25), so a
report that names a disease only to rule it out does not come back for that disease; an index made before
the report-text vectors still answers from the model's `report` vector."""
import numpy as np
import pytest

from cmr_search.search import Store, connect
from tests.helpers.search_helpers import make_rows, report_row

NEGATED = "Biventricular size and function are normal, without features of hypertrophic cardiomyopathy."


@pytest.fixture
def negated_client(tmp_path, aligned_template, tiny_model):
    import shutil
    shutil.copytree(aligned_template, tmp_path / "data")
    with Store.open(tmp_path / "data") as s:
        s.upsert_studies([report_row("normal-negated", NEGATED, tiny_model.embed_dim)])
    client = connect(tmp_path / "data", model=tiny_model)
    yield client
    client.close()


@pytest.mark.parametrize("mode", ["report", "hybrid"])
def test_a_ruled_out_disease_is_not_a_match(negated_client, mode):
    keys = negated_client.search("hypertrophic cardiomyopathy", k=6, mode=mode)["study_key"].to_list()
    assert "normal-negated" not in keys and sum(k.startswith("hcm") for k in keys) >= 5


def test_report_mode_uses_the_report_text_vectors(negated_client):
    client = negated_client
    from cmr_search.search.terms import query_terms
    q = client.encode_report_query("cardiac amyloidosis")
    expect = client.store.fuse({"report_text": q, "report_clauses": q,
                                "report_terms": query_terms("cardiac amyloidosis")}, limit=5)
    got = client.search("cardiac amyloidosis", k=5, mode="report")
    assert got["study_key"].to_list() == [h.key for h in expect]
    assert client.info()["report_text_dim"] == 384


def test_an_index_without_report_text_answers_from_the_report_vector(tmp_path, tiny_model):
    rows = make_rows(n=12, dim=tiny_model.embed_dim)
    with Store.open(tmp_path / "old", dim=tiny_model.embed_dim, text_dim=None) as s:
        assert not s.has_report_text
        s.upsert_studies(rows)                     # report-text vectors in a row are dropped, not an error
        with pytest.raises(Exception, match="indexed before report-text search"):
            s.nearest(np.ones(384), "report_text")
    with connect(tmp_path / "old", model=tiny_model) as c:
        got = c.search("dilated left ventricle", k=4, mode="report")["study_key"].to_list()
        expect = [h.key for h in c.store.nearest(c.encode_query("dilated left ventricle"), "report", limit=4)]
        assert got == expect

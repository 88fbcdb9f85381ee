"""Store operations on both backends (embedded Edge and qdrant-client's in-memory stand-in)."""
import numpy as np
import pytest

from cmr_search.search import Filter, Store
from cmr_search.search.errors import IndexMissingError, QueryError, StudyNotFoundError

from tests.helpers.search_helpers import make_rows


def brute_force(rows, q, using="study", keep=lambda r: True, k=5):
    cands = [(float(np.dot(r["vectors"][using], q)), r["study_key"]) for r in rows
             if r["vectors"].get(using) is not None and keep(r)]
    return [key for _, key in sorted(cands, key=lambda t: -t[0])[:k]]


def test_nearest_matches_brute_force(any_store, rows):
    q = rows[5]["vectors"]["study"]
    assert [h.key for h in any_store.nearest(q, limit=5)] == brute_force(rows, q)
    hits = any_store.nearest(q, using="lge", limit=50)
    assert {h.key for h in hits} == {r["study_key"] for r in rows if r["vectors"]["lge"] is not None}


def test_filters_match_a_python_reference(any_store, rows):
    f = Filter(sex="F", age=(30, 60), vendor="philips", views=["lge_sax"])
    keep = lambda r: (r["sex"] == "F" and 30 <= r["age"] <= 60 and r["manufacturer"].startswith("Philips")  # noqa: E731
                      and "lge_sax" in r["views"])
    assert any_store.count(f) == sum(map(keep, rows)) > 0
    q = rows[0]["vectors"]["study"]
    assert [h.key for h in any_store.nearest(q, filters=f, limit=3)] == brute_force(rows, q, keep=keep, k=3)


def test_date_filter_is_inclusive_of_partial_periods(any_store, rows):
    n = sum(r["study_date"].startswith(("2016", "2017")) for r in rows)
    assert any_store.count(Filter(date=("2016", "2017"))) == n > 0


def test_exclude_and_recommend_leave_out_the_examples(any_store, rows):
    q = rows[7]["vectors"]["study"]
    assert "s0007" not in [h.key for h in any_store.nearest(q, limit=10, exclude=["s0007"])]
    pos = [rows[1]["vectors"]["study"], rows[2]["vectors"]["study"]]
    hits = any_store.recommend(pos, [rows[3]["vectors"]["study"]], limit=10, exclude=["s0001", "s0002", "s0003"])
    assert len(hits) == 10 and not {"s0001", "s0002", "s0003"} & {h.key for h in hits}


def test_fusion_ranks_a_study_first_when_both_vectors_agree(any_store, rows):
    r = rows[9]
    hits = any_store.fuse({"study": r["vectors"]["study"], "report": r["vectors"]["report"]}, limit=5)
    assert hits[0].key == "s0009" and len(hits) == 5


def test_get_vectors_scroll_facet_and_payload(any_store, rows):
    (hit,) = any_store.get(["s0003"], vectors=["lge", "study"])
    assert set(hit.vectors) == {"study"} and hit.payload["study_date"] == "2018-04-04"
    assert hit.payload["manufacturer"] == "Siemens"
    with pytest.raises(QueryError, match="no 'lge' vector"):
        any_store.vectors_of(["s0003"], "lge")
    assert sorted(h.key for h in any_store.scroll(batch=7)) == sorted(r["study_key"] for r in rows)
    assert dict(any_store.facet("sex")) == {"F": 30, "M": 30}
    any_store.set_payload("s0003", {"labels": ["AMYLOID"], "label_scores": {"AMYLOID": 0.9}})
    assert any_store.count(Filter(labels=["AMYLOID"])) == 1
    with pytest.raises(QueryError, match="cannot facet"):
        any_store.facet("impression")


def test_upsert_is_idempotent_and_delete_removes(any_store, rows):
    assert any_store.upsert_studies(rows[:10]) == 10 and any_store.count() == len(rows)
    any_store.delete(["s0000", "s0001"])
    assert any_store.count() == len(rows) - 2
    with pytest.raises(StudyNotFoundError, match="'s0000'"):
        any_store.get(["s0000", "s0005"])


def test_bad_limits(any_store, rows):
    for k in (0, -1, 10_001, 2.5, True):
        with pytest.raises(QueryError, match="k="):
            any_store.nearest(rows[0]["vectors"]["study"], limit=k)


def test_embedded_store_persists_and_unlocks(tmp_path):
    with Store.open(tmp_path, dim=32) as s:
        s.upsert_studies(make_rows(20))
        assert (tmp_path / "index" / "cmr_studies.lock").exists()
    assert not (tmp_path / "index" / "cmr_studies.lock").exists()
    with Store.open(tmp_path) as s:                     # no dim: open existing, size from the index
        assert s.dim == 32 and s.count() == 20
        s.optimize()
        assert s.info()["points"] == 20 and s.info()["model_ids"] == ["test:000000000000"]


def test_open_without_an_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexMissingError, match="cmr index"):
        Store.open(tmp_path)

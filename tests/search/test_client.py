"""The client on an index whose vectors sit near the MiniLM embedding of each study's class phrase."""
import polars as pl
import pytest

from cmr_search.search import Filter
from cmr_search.search.results import RESULT_SCHEMA

REQUIRED = ["study_key", "score", "age", "sex", "study_date", "manufacturer", "field_strength", "views",
            "labels", "impression"]


def _classes(frame):
    return [k.split("-")[0] for k in frame["study_key"]]


def test_search_returns_the_result_frame(aligned_client):
    df = aligned_client.search("cardiac amyloidosis", k=5)
    assert isinstance(df, pl.DataFrame) and df.columns[:len(REQUIRED)] == REQUIRED
    assert dict(df.schema) == RESULT_SCHEMA and df.height == 5
    assert df["score"].to_list() == sorted(df["score"].to_list(), reverse=True)
    assert _classes(df).count("amyloid") >= 4


@pytest.mark.parametrize("mode", ["image", "report", "hybrid"])
def test_modes_find_the_class(aligned_client, mode):
    df = aligned_client.search("hypertrophic cardiomyopathy, septal hypertrophy", k=4, mode=mode)
    assert _classes(df).count("hcm") >= 3


def test_lge_view_skips_studies_without_lge(aligned_client):
    df = aligned_client.search("normal heart", k=30, view="lge", mode="image")
    assert "normal" not in _classes(df) and df.height == 24


def test_filters_apply(aligned_client):
    df = aligned_client.search("ischemic scar", k=30, filters=Filter(sex="F", age=(35, 50)))
    assert df.height > 0 and set(df["sex"]) == {"F"} and df["age"].is_between(35, 50).all()
    assert aligned_client.search("ischemic scar", k=30, filters={"sex": "M"})["sex"].unique().to_list() == ["M"]


def test_similar_reports_for_and_refine_exclude_the_examples(aligned_client):
    sim = aligned_client.similar("icm-0", k=4)
    assert "icm-0" not in sim["study_key"].to_list() and _classes(sim).count("icm") >= 3
    rep = aligned_client.reports_for("icm-0", k=3)
    assert "icm-0" not in rep["study_key"].to_list() and all("ischemic" in t for t in rep["impression"])
    ref = aligned_client.refine(positive=["hcm-0", "hcm-1"], negative=["normal-0"], k=4)
    assert not {"hcm-0", "hcm-1", "normal-0"} & set(ref["study_key"]) and _classes(ref).count("hcm") >= 3
    by_text = aligned_client.refine(positive=[], query="cardiac amyloidosis", k=3)
    assert _classes(by_text) == ["amyloid"] * 3
    vec = aligned_client.store.vectors_of(["nicm-2"])[0]
    assert aligned_client.similar(vec, k=1)["study_key"][0] == "nicm-2"     # by vector: itself included


def test_label_scores_every_study_and_writes_the_payload(aligned_client):
    from tests.helpers.search_helpers import CLASSES
    out = aligned_client.label({c: [t] for c, t in CLASSES.items()}, write=True)
    assert out.height == 30 and {f"score_{c}" for c in CLASSES} <= set(out.columns)
    acc = (out["label"].str.to_lowercase() == out["study_key"].str.split("-").list.first()).mean()
    assert acc >= 0.9
    df = aligned_client.search("cardiac amyloidosis", k=3, filters=Filter(labels=["AMYLOID"]))
    assert df["labels"].to_list() == [["AMYLOID"]] * 3
    scores = df["label_scores"][0]
    assert {s["label"] for s in scores} == set(CLASSES) and abs(sum(s["score"] for s in scores) - 1) < 1e-2


def test_query_embeddings_are_cached(aligned_client, monkeypatch):
    aligned_client.search("dilated LV", k=2)
    enc = aligned_client.text_encoder
    monkeypatch.setattr(enc, "encode", lambda *a, **k: pytest.fail("re-encoded a cached query"))
    aligned_client.search("  dilated   LV ", k=2)           # same text after whitespace normalisation
    with pytest.raises(pytest.fail.Exception, match="re-encoded"):
        aligned_client.search("a query never seen", k=2)     # the patch bites: an uncached query encodes


def test_label_reports_progress_from_zero_to_one(aligned_client):
    from tests.helpers.search_helpers import CLASSES
    seen = []
    aligned_client.label({c: [t] for c, t in CLASSES.items()}, write=False,
                         progress=lambda f, msg: seen.append((f, msg)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert seen[-1][1].startswith("labelled ")


def test_the_default_mode_is_hybrid(aligned_client):
    q = "asymmetric septal hypertrophy"
    assert aligned_client.search(q, k=8)["study_key"].to_list() == \
        aligned_client.search(q, k=8, mode="hybrid")["study_key"].to_list()


def test_hybrid_uses_the_measurements_a_query_names(aligned_client):
    """'reduced ejection fraction': every top hit has a measured LVEF under 50 % (NICM and ICM here)."""
    res = aligned_client.search("reduced ejection fraction", k=6, mode="hybrid")
    assert res["lvef"].drop_nulls().len() == 6 and (res["lvef"] < 50).all()


def test_hybrid_weights_the_image_ranking_by_its_measured_reliability(aligned_client):
    """An image ranking worth nothing (weight 0) leaves hybrid = the fused report rankings."""
    from cmr_search.search.fusion import weighted_rrf
    q = "amyloid infiltration with diffuse enhancement"            # names no measurement
    aligned_client.image_weight = 0.0
    got = aligned_client.search(q, k=8, mode="hybrid")["study_key"].to_list()
    queries = aligned_client._report_queries_for(q)
    rankings = {u: aligned_client.store.nearest(v, u, None, 100) for u, v in queries.items()}
    assert got == [h.key for h in weighted_rrf(rankings, {}, 8)]


def test_weighted_hybrid_hits_carry_their_whole_payload(aligned_client):
    """The rankings fused by weight fetch only what fusion reads; the k hits returned get all of it."""
    res = aligned_client.search("reduced ejection fraction", k=5, mode="hybrid")
    full = aligned_client.search("reduced ejection fraction", k=5, mode="report")
    assert res.columns == full.columns and {"impression", "lvef", "sex"} <= set(res.columns)
    assert res["impression"].drop_nulls().len() == 5


@pytest.mark.parametrize("k", [-0.0, 0, 2.5, True])
def test_hybrid_refuses_a_bad_k_before_fusing(aligned_client, k):
    """Found by the slow query fuzzer: a float k reached the weighted fusion's slice (TypeError)."""
    from cmr_search.search.errors import QueryError
    with pytest.raises(QueryError):
        aligned_client.search("dilated LV, EF 25%", k=k, mode="hybrid")

"""Exactness on an indexed SYNTHETIC archive with known truth (tests/helpers/cohort_data.py): a criteria
cohort equals the set computed from DATA/cache/studies.parquet with polars; a text criterion equals every
study whose cosine with the encoded text is at or above the cut (numpy over the stored vectors)."""
import numpy as np
import polars as pl
import pytest

from cmr_search.search import Store, connect
from cmr_search.search.cohort_definition import CohortDefinition
from cmr_search.search.criteria import AnyOf, Not, Report, Semantic, Where
from tests.helpers.cohort_data import cohort_data


@pytest.fixture(scope="module")
def data():
    return cohort_data()


@pytest.fixture(scope="module")
def cache(data):
    return pl.read_parquet(data / "cache" / "studies.parquet")


def _cut(cos: np.ndarray, q: float) -> float:
    """A cut-off halfway between two distinct cosines near quantile q (no study sits on it: no float ties)."""
    v = np.unique(np.round(cos, 5))
    i = min(max(int(q * len(v)), 1), len(v) - 1)
    return float((v[i - 1] + v[i]) / 2)


def _has(key: str):
    return pl.col("report_findings").list.contains(key)


def test_criteria_cohort_equals_the_study_cache(data, cache):
    d = CohortDefinition([Where.parse("age=40..80"), Where.parse("lvef<40"), Report("LGE")],
                         [Report("cardiac amyloidosis", status=["affirmed", "uncertain"])])
    want = cache.filter(pl.col("age").is_between(40, 80) & (pl.col("lvef") < 40) & _has("LGE:affirmed")
                        & ~(_has("AMYLOID:affirmed") | _has("AMYLOID:uncertain")))
    with Store.open(data) as store:
        res = d.run(store, count_all=True)
        broad = CohortDefinition([Report("LGE")])              # patients with several studies in it
        first, last = broad.run(store, per_patient="first"), broad.run(store, per_patient="last")
    assert set(res.keys) == set(want["study_key"]) and len(want) >= 3
    assert res.patient_keys == sorted(set(want["patient_key"]))
    assert res.attrition["studies"][0] == len(cache) and res.attrition["patients"][0] == cache["patient_key"].n_unique()
    for got, pick in ((first, pl.col("study_date").arg_min()), (last, pl.col("study_date").arg_max())):
        one = cache.filter(_has("LGE:affirmed")).group_by("patient_key").agg(pl.col("study_key").get(pick))
        assert set(got.keys) == set(one["study_key"])
    assert set(first.keys) != set(last.keys)                         # first and last differ


def test_or_not_dates_and_views_equal_the_study_cache(data, cache):
    d = CohortDefinition([AnyOf([Where.parse("sex=F"), Report("HCM", status=["family"])]),
                          Where.parse(["date=2014..2018", "views=lge_sax"])],
                         [Not(Where.parse("lvef>=30"))])               # excludes the unmeasured and LVEF < 30
    want = cache.filter(((pl.col("sex") == "F") | _has("HCM:family"))
                        & pl.col("study_date").is_between(pl.lit("2014-01-01"), pl.lit("2018-12-31"))
                        & pl.col("views").list.contains("lge_sax") & (pl.col("lvef") >= 30))
    with Store.open(data) as store:
        res = d.run(store)
    assert set(res.keys) == set(want["study_key"]) and 0 < len(want) < len(cache)


def test_text_criterion_is_exact_on_the_indexed_vectors(data):
    with connect(data) as client:
        hits = list(client.store.scroll(vectors=["study"]))
        X = np.array([h.vectors["study"] for h in hits])
        q = client.encode_query("diffuse enhancement, amyloid")
        cos = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
        cut = _cut(cos, 0.5)
        res = CohortDefinition([Semantic("diffuse enhancement, amyloid", cut)], per_patient="best").run(client)
        every = CohortDefinition([Semantic("diffuse enhancement, amyloid", cut)]).run(client)
        model_id = client.text_encoder.model_id
    want = {h.key for h, c in zip(hits, cos) if c >= cut}
    assert set(every.keys) == want and len(want) >= len(hits) // 2
    assert every.scores["image_cosine"] == pytest.approx({h.key: float(c) for h, c in zip(hits, cos) if h.key in want},
                                                         abs=1e-4)
    assert every.model_id == model_id and res.model_id == model_id
    best = {}
    for k in every.keys:
        p = every.patients[k]
        if p not in best or every.scores["image_cosine"][k] > every.scores["image_cosine"][best[p]]:
            best[p] = k
    assert set(res.keys) == set(best.values())


def test_report_text_criterion_is_exact_on_the_report_vectors(data):
    with connect(data) as client:
        hits = [h for h in client.store.scroll(vectors=["report_text"]) if "report_text" in h.vectors]
        X = np.array([h.vectors["report_text"] for h in hits])
        q = client.encode_report_query("cardiac amyloidosis")
        cos = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
        cut = _cut(cos, 0.6)
        res = CohortDefinition.from_dict({"inclusion": [{"text": "cardiac amyloidosis", "mode": "report",
                                                         "min_score": cut}]}).run(client)
    want = {h.key for h, c in zip(hits, cos) if c >= cut}
    assert set(res.keys) == want and 0 < len(want) < len(hits)
    assert set(res.scores) == {"report_cosine"}

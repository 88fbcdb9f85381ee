"""The same fixtures and queries through the embedded engine and qdrant-client (in-memory stand-in for the
server API) must give the same ranked ids (fixtures are continuous random vectors: no score ties)."""
import numpy as np
import pytest

from cmr_search.search import Filter

FILTERS = [None, Filter(sex="F"), Filter(age=(30, 55), views=["lge_sax"]),
           Filter(date=("2017", "2019-06"), vendor=["GE", "Philips"]), Filter(field_strength=3.0, labels=["A", "C"]),
           Filter(lvef=(None, 35)), Filter(lv_mass=(150, None), max_wall=(13, 20)),
           Filter.parse(["lvef<45", "rvef>=40", "seg_quality=good,check"]), Filter(lvedvi=(60, 100), sex="M"),
           Filter(findings=["LGE:affirmed"]), Filter.parse(["findings=lge:affirmed,HCM:FAMILY", "sex=F"])]
USING = ["study", "cine", "lge", "report", "report_text", "report_clauses", "report_terms"]
DIM = {"report_text": 384, "report_clauses": 384}       # report-text space (multivector: MaxSim)


def _keys(hits):
    return [h.key for h in hits]


def _same(a, b):
    assert _keys(a) == _keys(b)
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("using", USING)
@pytest.mark.parametrize("fi", range(len(FILTERS)))
def test_nearest(edge_ro, memory_ro, rows, using, fi):
    q = np.random.default_rng(fi).normal(size=DIM.get(using, 32))
    if using == "report_terms":                     # BM25: IDF from the collection, on both backends
        q = {7 * i: 1.0 for i in np.random.default_rng(fi).choice(50, size=3, replace=False)}
    args = dict(using=using, filters=FILTERS[fi], limit=7, exclude=["s0011"])
    _same(edge_ro.nearest(q, **args), memory_ro.nearest(q, **args))


@pytest.mark.parametrize("fi", range(len(FILTERS)))
def test_recommend(edge_ro, memory_ro, rows, fi):
    pos = [rows[i]["vectors"]["study"] for i in (1, 4)]
    neg = [rows[8]["vectors"]["study"]]
    args = dict(filters=FILTERS[fi], limit=8, exclude=["s0001", "s0004", "s0008"])
    _same(edge_ro.recommend(pos, neg, **args), memory_ro.recommend(pos, neg, **args))


@pytest.mark.parametrize("fi", range(len(FILTERS)))
def test_fusion(edge_ro, memory_ro, rows, fi):
    rng = np.random.default_rng(100 + fi)
    q = {"study": rng.normal(size=32), "report": rng.normal(size=32)}
    a = edge_ro.fuse(q, filters=FILTERS[fi], limit=6)
    b = memory_ro.fuse(q, filters=FILTERS[fi], limit=6)
    _same(a, b)


@pytest.mark.parametrize("fi", range(len(FILTERS)))
def test_fusion_with_report_text(edge_ro, memory_ro, rows, fi):
    """The fusion a hybrid text query runs: image vector + whole report + best clause (MaxSim)."""
    rng = np.random.default_rng(200 + fi)
    t = rng.normal(size=384)
    q = {"study": rng.normal(size=32), "report_text": t, "report_clauses": t,
         "report_terms": {7 * int(i): 1.0 for i in rng.choice(50, size=3, replace=False)}}
    _same(edge_ro.fuse(q, filters=FILTERS[fi], limit=6), memory_ro.fuse(q, filters=FILTERS[fi], limit=6))


@pytest.mark.parametrize("fi", range(len(FILTERS)))
def test_count_facet_scroll(edge_ro, memory_ro, fi):
    f = FILTERS[fi]
    assert edge_ro.count(f) == memory_ro.count(f)
    for field in ("sex", "manufacturer", "views", "labels"):
        assert edge_ro.facet(field, f) == memory_ro.facet(field, f)
    assert sorted(h.key for h in edge_ro.scroll(f)) == sorted(h.key for h in memory_ro.scroll(f))


def test_payload_round_trip(edge_store, memory_store):
    for s in (edge_store, memory_store):
        s.set_payload("s0002", {"labels": ["X"], "label_scores": {"X": 0.75, "Y": 0.25}})
    a, b = edge_store.get(["s0002", "s0010"]), memory_store.get(["s0002", "s0010"])
    strip = lambda hits: [{k: v for k, v in h.payload.items() if k != "indexed_at"} for h in hits]  # noqa: E731
    assert strip(a) == strip(b)


@pytest.mark.parametrize("f", [Filter(lvef=(None, 35)), Filter(rvef=(0, 100)), Filter(lvef=(None, None)),
                               Filter.parse(["lvef<35"]), Filter.parse(["lvef<=35"]), Filter(max_wall=(13, 20))])
def test_measurement_ranges_skip_unmeasured(edge_ro, memory_ro, rows, f):
    """A range on a measurement matches exactly the studies that have the value inside it: a study never
    measured (the field absent) or measured without it (null) matches none, on both backends."""
    (name, lo, hi), = [c[1:] for c in f.conditions().must]
    want = sorted(r["study_key"] for r in rows if r.get(name) is not None
                  and (lo is None or r[name] >= lo) and (hi is None or r[name] <= hi))
    assert want and len(want) < len(rows)
    for store in (edge_ro, memory_ro):
        assert sorted(h.key for h in store.scroll(f)) == want
        assert store.count(f) == len(want)
    strict = sorted(h.key for h in edge_ro.scroll(Filter.parse(["lvef<35"])))
    assert all(r["lvef"] < 35 for r in rows if r["study_key"] in strict)

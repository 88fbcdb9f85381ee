"""A categorical filter value that no study holds is an error listing the values the index holds
(search.filters.check_can_match, called by every Client query), not an empty result."""
from __future__ import annotations

import shutil

import pytest
from qdrant_client import QdrantClient

from tests.helpers.search_helpers import make_rows
from cmr_search.search import Filter, Store, connect
from cmr_search.search.errors import FilterMatchesNothingError, FilterValueError
from cmr_search.search.filters import check_can_match


@pytest.mark.parametrize("fields, name, values", [
    ({"sex": "female"}, "sex", ["female"]),
    ({"vendor": "Canon"}, "vendor", ["Canon"]),
    ({"views": ["cine_sax", "lge_lax"]}, "views", ["lge_lax"]),          # all views are required
    ({"labels": ["Z"]}, "labels", ["Z"]),
    ({"seg_quality": ["great"]}, "seg_quality", ["great"]),
    ({"field_strength": 2.0}, "field_strength", ["2"]),
])
def test_value_no_study_holds_is_refused_with_the_values_held(memory_store, fields, name, values):
    with pytest.raises(FilterMatchesNothingError) as e:
        check_can_match(Filter(**fields), memory_store)
    assert (e.value.name, e.value.values) == (name, values) and e.value.usage
    held = {"sex": {"F": 30, "M": 30}, "vendor": {"GE": 20, "Philips": 20, "Siemens": 20},
            "field_strength": {"1.5": 30, "3": 30}}.get(name)
    if held:
        assert e.value.held == held
    assert f"filter {name}={','.join(values)} can match nothing: the index holds only these {name} values" \
        in str(e.value)


@pytest.mark.parametrize("fields", [
    {"sex": ["F", "X"]},                    # any of: F still matches
    {"vendor": "siemens"},                  # canonical vendor names
    {"sex": "f", "views": ["lge_sax"], "labels": ["A", "Q"], "seg_quality": ["good"]},
    {"field_strength": 1.5}, {"field_strength": (2.0, 2.5)},   # a range may hold nothing: not refused
    {"lvef": (0.0, 1.0)}, {"age": (150, None)},
])
def test_values_some_study_holds_and_ranges_pass(memory_store, fields):
    f = Filter(**fields)
    assert check_can_match(f, memory_store) is f
    assert check_can_match(None, memory_store) is None


def test_a_field_no_study_has_says_so():
    rows = make_rows(n=6)
    for r in rows:
        del r["labels"]
    with Store.open(client=QdrantClient(":memory:"), dim=32) as store:
        store.upsert_studies(rows)
        with pytest.raises(FilterMatchesNothingError, match="no study in the index has a labels value.*cmr label"):
            check_can_match(Filter(labels=["A"]), store)


def test_empty_index_and_unfaceted_fields_are_not_checked():
    with Store.open(client=QdrantClient(":memory:"), dim=32) as store:
        assert check_can_match(Filter(sex="female"), store) is not None

    class NoFacets:                          # e.g. an older index without the payload index
        def facet(self, *a, **k):
            raise RuntimeError("No appropriate index for faceting")

        def count(self, *a):
            return 5

    assert check_can_match(Filter(sex="female", labels=["Z"]), NoFacets()) is not None


def test_client_queries_raise_it(tmp_path, edge_template, monkeypatch):
    monkeypatch.delenv("CMR_CHECKPOINT", raising=False)
    shutil.copytree(edge_template, tmp_path / "data")
    with connect(tmp_path / "data") as client:
        with pytest.raises(FilterValueError, match="sex=female can match nothing.*F \\(30 studies\\)"):
            client.search("dilated LV", filters={"sex": "female"})
        with pytest.raises(FilterMatchesNothingError, match="vendor=Canon"):
            client.similar("s0001", filters=Filter(vendor="Canon"))
        assert client.similar("s0001", k=3, filters=Filter(vendor="Siemens"))["manufacturer"].to_list() == \
            ["Siemens"] * 3


def test_findings_on_an_index_built_before_findings_were_read_says_reindex(tmp_path):
    rows = make_rows()
    for r in rows:
        r.pop("report_findings")
    with Store.open(tmp_path / "old", dim=32) as s:
        s.upsert_studies(rows)
        with pytest.raises(FilterMatchesNothingError, match="re-run `cmr index`"):
            check_can_match(Filter(findings=["LGE:affirmed"]), s)


def test_a_finding_no_study_states_lists_those_held(memory_store):
    with pytest.raises(FilterMatchesNothingError) as e:
        check_can_match(Filter(findings=["LGE:affirmed", "AMYLOID:family"]), memory_store)
    assert e.value.values == ["AMYLOID:family"] and e.value.held["LGE:affirmed"] == 30
    check_can_match(Filter(findings=["LGE:affirmed", "HCM:family"]), memory_store)      # both held

"""Formula injection (search/safe_csv.py): the cohort exports (a saved query's Cohort.export and a criteria
result's CohortResult.export with its attrition table) neutralise text cells a spreadsheet would run as a
formula; Parquet keeps the values as they are; number columns are untouched."""
from types import SimpleNamespace

import polars as pl
import pytest

from cmr_search.search import Cohort
from cmr_search.search.cohort_definition import CohortDefinition
from cmr_search.search.criteria import Where
from cmr_search.search.safe_csv import csv_text, guarded
from tests.helpers.search_helpers import make_rows

# (impression, manufacturer, model_name) of the first studies: every one a formula to a spreadsheet
EVIL = ('=HYPERLINK("http://x")', "=1+1", "@SUM(1+1)", "+1", "-2+3", "\tcmd", "\rcmd")
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def evil_rows() -> list[dict]:
    """make_rows(12) whose first studies carry EVIL in impression, manufacturer and model_name; study 0's
    age is -3.5 (a number column's minus sign is no formula)."""
    rows = make_rows(12)
    for i, v in enumerate(EVIL):
        rows[i].update(impression=v, manufacturer=v, model_name=v)
    rows[0]["age"] = -3.5
    return rows


@pytest.fixture
def store():
    from qdrant_client import QdrantClient

    from cmr_search.search import Store
    s = Store.open(client=QdrantClient(":memory:"), dim=32)
    s.upsert_studies(evil_rows())
    yield s
    s.close()


def _check(csv_path, pq_path):
    """The Parquet holds EVIL as written (the vendor as canonical_vendor keeps it: stripped); every such text
    cell of the CSV is the same with a leading '; age stays the number -3.5 in both."""
    cols = ("study_key", "impression", "manufacturer", "model_name")
    csv = {r[0]: r[1:] for r in pl.read_csv(csv_path).select(cols).iter_rows()}
    pq = {r[0]: r[1:] for r in pl.read_parquet(pq_path).select(cols).iter_rows()}
    for j, v in enumerate(EVIL):
        key = f"s{j:04d}"
        assert pq[key][0] == v and pq[key][2] == v and pq[key][1] in (v, v.strip())
        want = tuple("'" + x if x.startswith(FORMULA) else x for x in pq[key])
        assert csv[key] == want, (key, csv[key])
    assert csv["s0000"][0] == "'" + EVIL[0] and csv["s0007"] == pq["s0007"]          # plain text: as it is
    for frame in (pl.read_csv(csv_path), pl.read_parquet(pq_path)):
        assert frame.schema["age"] == pl.Float64 and frame.filter(pl.col("study_key") == "s0000")["age"][0] == -3.5


def test_saved_query_cohort_export_neutralises_formulas(store, tmp_path):
    keys = [r["study_key"] for r in evil_rows()]
    cohort = Cohort({"query": "x"}, keys, [1.0 - i / 100 for i in range(len(keys))])
    client = SimpleNamespace(store=store)
    _check(cohort.export(tmp_path / "c.csv", client=client), cohort.export(tmp_path / "c.parquet", client=client))
    assert pl.read_csv(tmp_path / "c.csv")["rank"].to_list() == list(range(1, 13))


def test_criteria_cohort_export_neutralises_formulas_and_the_attrition_table(store, tmp_path):
    res = CohortDefinition([Where.parse("age<1000", name=EVIL[0])], name="evil").run(store)   # a step's label
    assert len(res.keys) == 12
    _check(res.export(tmp_path / "r.csv"), res.export(tmp_path / "r.parquet"))
    side = pl.read_csv(tmp_path / "r.attrition.csv", infer_schema_length=0)
    assert side["criterion"][1] == "'" + EVIL[0]
    assert not any(c.startswith(FORMULA) for col in side.columns for c in side[col] if c)


def test_guard_touches_only_text_cells_that_start_a_formula():
    frame = pl.DataFrame({"t": ["=1", "a=1", "-", "", None, "ok"], "x": [-1.5, 2.0, -3.0, 0.0, None, 1.0],
                          "c": pl.Series(["@a", "b", "b", "b", "b", "b"], dtype=pl.Categorical)})
    out = guarded(frame)
    assert out["t"].to_list() == ["'=1", "a=1", "'-", "", None, "ok"] and out["x"].equals(frame["x"])
    assert out["c"].to_list()[:2] == ["'@a", "b"]
    assert csv_text(frame).splitlines()[1] == "'=1,-1.5,'@a"

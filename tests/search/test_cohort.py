import warnings

import polars as pl
import pytest

from cmr_search.search import Cohort, Filter
from cmr_search.search.cohort import CohortDriftWarning
from cmr_search.search.errors import QueryError


def test_cohort_saves_reruns_and_exports(aligned_client, tmp_path):
    c = aligned_client.cohort("cardiac amyloidosis", k=8, filters=Filter(sex="F"), mode="hybrid")
    assert len(c.keys) == 8 and c.spec["model_id"].startswith("cmr-tiny:") and c.spec["index"]["points"] == 30
    loaded = Cohort.load(c.save(tmp_path / "a.cohort.json"))
    assert loaded.keys == c.keys and loaded.spec["filters"] == {"sex": "F"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # an unchanged index: no drift warning
        again = loaded.rerun(aligned_client)
    assert again.keys == c.keys and again.scores == pytest.approx(c.scores)

    pq = pl.read_parquet(c.export(tmp_path / "a.parquet"))
    assert pq["study_key"].to_list() == c.keys and pq["rank"].to_list() == list(range(1, 9))
    csv = pl.read_csv(c.export(tmp_path / "a.csv"))
    assert csv["study_key"].to_list() == c.keys and csv["views"][0] == "cine_sax;lge_sax"
    assert pl.read_parquet(loaded.export(tmp_path / "b.parquet", client=aligned_client))["study_key"].to_list() == c.keys


def test_cohort_export_joins_the_link_table_only_when_asked(aligned_client, tmp_path):
    c = aligned_client.cohort("normal heart", k=3)
    link = tmp_path / "link.parquet"
    pl.DataFrame({"study_key": c.keys, "study_instance_uid": ["1.2.3"] * 3}).write_parquet(link)
    assert "study_instance_uid" not in pl.read_parquet(c.export(tmp_path / "x.parquet")).columns
    assert pl.read_parquet(c.export(tmp_path / "y.parquet", link=link))["study_instance_uid"].to_list() == ["1.2.3"] * 3
    with pytest.raises(QueryError, match=".csv or .parquet"):
        c.export(tmp_path / "x.xlsx")


def test_rerun_on_a_changed_index_warns(aligned_client, tmp_path):
    c = aligned_client.cohort("normal heart", k=3)
    aligned_client.store.delete([c.keys[0]])
    with pytest.warns(CohortDriftWarning, match="points"):
        again = c.rerun(aligned_client)
    assert c.keys[0] not in again.keys


def test_cohort_filtered_by_lvef_exports_the_measurements(aligned_client, tmp_path):
    c = aligned_client.cohort("dilated cardiomyopathy", k=10, filters=Filter.parse(["lvef<35"]), mode="hybrid")
    assert c.keys and all(k.startswith("nicm-") for k in c.keys)           # only NICM studies have LVEF < 35
    assert Cohort.load(c.save(tmp_path / "c.cohort.json")).spec["filters"]["lvef"][1] < 35
    pq = pl.read_parquet(c.export(tmp_path / "c.parquet"))
    assert {"lvef", "lvedv", "lv_mass", "max_wall", "rvef", "seg_quality", "seg_flags"} <= set(pq.columns)
    assert all(v < 35 for v in pq["lvef"]) and set(pq["seg_quality"]) == {"good"}
    csv = pl.read_csv(c.export(tmp_path / "c.csv"))
    assert csv["lvef"].to_list() == pq["lvef"].to_list() and "max_wall" in csv.columns
    everyone = pl.read_parquet(aligned_client.cohort("heart", k=30).export(tmp_path / "all.parquet"))
    assert everyone["lvef"].null_count() == 5                                # the unmeasured ones: null

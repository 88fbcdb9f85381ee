"""Cohort page: basket, small counts, facets, threshold, export (CSV / Parquet / spec), save and re-run."""
import json
import stat

import polars as pl

from tests.helpers.app_fixtures import N_STUDIES, app, goto, search, ui_data  # noqa: F401


def _basket(at):
    at = search(at)
    at.button(key="add_all").click().run()
    return goto(at, "Cohort")


def test_cohort_counts_small_and_facets(app):
    at = _basket(app)
    assert at.metric[0].value == str(N_STUDIES)
    facet_values = [df.value for df in at.dataframe[1:]]
    assert all(set(v["studies"]) <= {"<11"} | {str(n) for n in range(11, 100)} for v in facet_values)
    assert any("<11" in set(v["studies"]) for v in facet_values)


def test_threshold_drops_low_scores(app):
    at = _basket(app)
    s = at.slider(key="threshold")
    s.set_value(s.max).run()
    assert at.metric[0].value == "<11"
    assert len(at.dataframe[0].value) == 1


def test_export_csv_parquet_spec(app):
    at = _basket(app)
    dl = {b.key: b for b in at.get("download_button")}
    assert set(dl) == {"dl_csv", "dl_parquet", "dl_spec"}
    exports = app_data_exports(at)
    csv = pl.read_csv(next(exports.glob("*.csv")))
    pq = pl.read_parquet(next(exports.glob("*.parquet")))
    assert csv.height == pq.height == N_STUDIES
    assert {"rank", "study_key", "score", "labels", "lvef", "lv_mass", "max_wall", "seg_quality"} <= set(csv.columns)
    assert not {"study_instance_uid", "accession_number", "source_path"} & set(pq.columns)
    assert csv["study_key"].to_list() == pq["study_key"].to_list()
    assert _mode(exports) == 0o700 and {_mode(f) for f in exports.iterdir()} == {0o600}    # docs/privacy.md


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def app_data_exports(at):
    from cmr_search.ui.app.state import data_dir
    return data_dir() / "exports"


def test_save_reopen_rerun(app):
    at = _basket(app)
    at.text_input(key="save_name").set_value("my cohort")
    at.button(key="save_cohort").click().run()
    from cmr_search.search.cohort import Cohort
    from cmr_search.ui.app.state import data_dir
    saved = data_dir() / "cohorts" / "my_cohort.cohort.json"
    assert (_mode(saved.parent), _mode(saved)) == (0o700, 0o600)                         # docs/privacy.md
    co = Cohort.load(saved)
    assert len(co.keys) == N_STUDIES and co.spec["query"] and "index" in co.spec
    json.loads(saved.read_text())
    at.session_state.basket = {}
    at.run()
    at.selectbox(key="saved_pick").set_value("my_cohort.cohort.json")
    at.button(key="reopen").click().run()
    assert not at.exception and len(at.session_state.basket) == N_STUDIES
    at.button(key="rerun").click().run()
    assert any("same ranked keys" in i.value for i in at.info)


def test_empty_basket_message(app):
    at = goto(app, "Cohort")
    assert any("basket is empty" in i.value for i in at.info)

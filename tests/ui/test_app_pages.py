"""Study, Map and About pages."""
from tests.helpers.app_fixtures import app, goto, result_keys, search, ui_data  # noqa: F401


def _open_first(at):
    at = search(at)
    key = result_keys(at)[0]
    at.button(key=f"r_open_{key}").click().run()
    assert not at.exception, at.exception
    return at, key


def test_study_page_views_qa_neighbours(app):
    at, key = _open_first(app)
    captions = [c for img in at.get("image") for c in img.captions]
    assert "cine_sax" in captions and any(c.startswith("lge_sax slice") for c in captions)
    assert [s.value for s in at.subheader][:1] == ["Cine"]
    heads = [s.value for s in at.subheader]
    for h in ("Impression", "QA", "Similar studies (study → study)", "Nearest reports of other studies (study → report)"):
        assert h in heads
    assert key not in result_keys(at, "sim_open_")              # similar excludes the study itself
    rep = next(d.value for d in at.dataframe if "impression" in d.value.columns)
    assert len(rep) == 5 and key not in set(rep["study_key"]) and "score" in rep.columns


def test_study_page_says_why_it_is_a_hit(app):
    at, key = _open_first(app)
    query = at.session_state.query
    assert f"Why this hit for “{query}”" in [s.value for s in at.subheader]
    clauses = next(d.value for d in at.dataframe if "clause" in d.value.columns)
    assert len(clauses) >= 1 and clauses["cosine"].between(-1, 1).all()
    assert list(clauses["cosine"]) == sorted(clauses["cosine"], reverse=True)
    shown = " ".join(h.proto.body for h in at.get("html"))
    assert "<mark>" in shown                                   # the best clause is marked
    assert any(c.value.startswith("image vectors (cosine") for c in at.caption)


def test_lge_scrubber_moves_slice(app):
    at, key = _open_first(app)
    slider = at.slider(key=f"lge_{key}_lge_sax")
    last = int(slider.max)
    slider.set_value(last).run()
    assert any(c == f"lge_sax slice {last + 1}/{last + 1}" for img in at.get("image") for c in img.captions)


def test_study_query_param_and_add(app):
    at, key = _open_first(app)
    assert at.query_params["study"] == [key] or at.query_params["study"] == key
    at.button(key="study_add").click().run()
    assert key in at.session_state.basket


def test_map_page(app):
    at = goto(app, "Map")
    assert [t.value for t in at.title][0] == "Map"
    at.selectbox(key="map_color").set_value("sex").run()
    assert not at.exception


def test_map_projection_and_click(ui_data):
    import numpy as np

    from cmr_search.ui.app.logic import pca_2d
    from cmr_search.ui.app.screens.map import picked_key
    xy = pca_2d(np.random.default_rng(0).normal(size=(12, 8)))
    assert xy.shape == (12, 2) and abs(xy[:, 0].mean()) < 1e-9 and xy[:, 0].var() >= xy[:, 1].var()
    assert picked_key({"selection": {"pick": [{"study_key": "abc"}]}}) == "abc"
    assert picked_key({"selection": {"pick": []}}) is None and picked_key({}) is None


def test_about_page(app, ui_data):
    at = goto(app, "About")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["studies"] == "12" and metrics["vector size"] == "256"
    assert "Model card" in [s.value for s in at.subheader]
    assert any("model_id" in str(j.value) for j in at.json)          # the full card
    versions = next(d.value for d in at.dataframe if "package" in d.value.columns)
    assert "streamlit" in set(versions["package"])
    vectors = next(d.value for d in at.dataframe if "vector" in d.value.columns)   # what the index holds
    assert list(vectors["vector"][:4]) == ["study", "cine", "lge", "report"] and set(vectors["size"][:4]) == {256}
    from cmr_search.search import Store
    with Store.open(ui_data) as s:
        has_text = s.has_report_text
    assert ("report_clauses" in set(vectors["vector"])) == has_text


def test_about_page_labels_every_study_with_progress(app, ui_data):
    at = goto(app, "About")
    assert "Zero-shot labels" in [s.value for s in at.subheader]
    at.button(key="label_all").click().run()
    assert not at.exception, at.exception
    done = [s.value for s in at.success]
    assert done and done[0].replace("\\", "").startswith("labelled 12 studies:")   # shown escaped (safe_text.md)
    bars = at.get("progress")
    assert bars and bars[0].proto.value == 100                         # the bar reached the end



def test_about_summaries_of_a_trained_card():
    import json
    from pathlib import Path

    from cmr_search.ui.app.screens.about import metrics_summary, training_summary
    card = json.loads((Path(__file__).parents[2] / "model/checkpoints/cmr-tiny-phantom/card.json").read_text())
    metrics, data = metrics_summary(card), training_summary(card)
    test = metrics["test wording"]
    assert test["studies"] >= 600 and 0.5 < test["zero-shot AUC NICM"] <= 1
    assert 0 < test["study→report same-diagnosis R@10"] <= 1
    assert data["n_studies"] > 1000 and data["device"] in ("cpu", "cuda")
    assert metrics_summary({}) is None and training_summary({}) is None


def test_study_page_measurements_and_mask_overlay(app, ui_data):
    import polars as pl
    table = pl.read_parquet(ui_data / "cache" / "studies.parquet")
    key = table.filter(pl.col("lvef").is_not_null())["study_key"][0]
    at = search(app)
    at.button(key=f"r_open_{key}").click().run()
    assert not at.exception, at.exception
    heads = [s.value for s in at.subheader]
    assert "Measurements" in heads and "Segmentation" in heads
    assert any("| LVEF |" in m.value for m in at.markdown)
    captions = [c for img in at.get("image") for c in img.captions]
    assert "mid SAX, ED" in captions and "mid SAX, ES" in captions
    assert list((ui_data / "thumbs" / key).glob("mask_0_*.png"))
    assert any(c.startswith("cine SAX, segmented") for c in captions)      # the loop, every frame segmented
    from PIL import Image
    loop = next((ui_data / "thumbs" / key).glob("seg_cine_*.gif"))
    gif = Image.open(loop)
    assert gif.n_frames > 1        # a loop, not a still (the fake images hold no heart: colours in test_e2e)


def test_study_page_shows_qa_as_a_table(app):
    at, key = _open_first(app)
    assert not at.json                                                # no raw JSON on the study page
    tables = [d.value for d in at.dataframe if list(d.value.columns) == ["item", "value"]]
    assert tables or any(c.value == "no QA record for this study" for c in at.caption)
    assert all(not any("{" in v for v in t["value"]) for t in tables)


def test_qa_rows_flatten_a_record():
    from cmr_search.ui.app.screens.study import qa_rows
    rows = qa_rows({"frames": {"cine_sax": 30}, "warnings": ["no report", "x"], "empty": None, "views": {}})
    assert rows == {"item": ["frames: cine_sax", "warnings", "empty", "views"], "value": ["30", "no report; x", "—", "—"]}


def test_map_page_says_how_to_get_labels_when_none_exist():
    import polars as pl

    from cmr_search.ui.app.screens.map import _any_label
    assert not _any_label(pl.DataFrame({"labels": ["(none)", "(none)"]}))
    assert _any_label(pl.DataFrame({"labels": ["(none)", "AMYLOID"]}))

"""Search page: query, results as cards, 👍/👎 refine, add to cohort, filters."""
from tests.helpers.app_fixtures import N_STUDIES, app, goto, result_keys, search, ui_data  # noqa: F401


def test_query_shows_cards_with_images(app):
    at = search(app)
    keys = result_keys(at)
    assert len(keys) == N_STUDIES
    assert any(c.value.startswith(f"{N_STUDIES} results") for c in at.caption)
    imgs = at.get("image")
    assert len(imgs) == 2 * N_STUDIES and [i.captions[0] for i in imgs[:2]] == ["cine SAX", "LGE"]    # cine GIF + LGE still


def test_thumbnails_cached_on_disk(app, ui_data):
    search(app)
    gifs = list((ui_data / "thumbs").rglob("cine_sax_*.gif"))
    assert gifs and gifs[0].read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    from PIL import Image
    assert Image.open(gifs[0]).n_frames > 1               # animated


def test_thumbs_down_refines_ranking(app):
    at = search(app)
    before = result_keys(at)
    at.button(key=f"r_down_{before[0]}").click().run()
    after = result_keys(at)
    assert at.session_state.negative == [before[0]]
    assert before[0] not in after and after != before[1:] or len(after) == len(before) - 1
    at.button(key=f"r_up_{after[0]}").click().run()
    again = result_keys(at)
    assert after[0] not in again and at.session_state.positive == [after[0]]
    assert any("refined by feedback" in i.value for i in at.info)


def test_new_query_clears_feedback(app):
    at = search(app)
    at.button(key=f"r_down_{result_keys(at)[0]}").click().run()
    at = search(at, "septal hypertrophy")
    assert at.session_state.negative == [] and len(result_keys(at)) == N_STUDIES


def test_add_to_cohort_one_and_all(app):
    at = search(app)
    first = result_keys(at)[0]
    at.button(key=f"r_add_{first}").click().run()
    assert list(at.session_state.basket) == [first]
    at.button(key="add_all").click().run()
    assert len(at.session_state.basket) == N_STUDIES


def test_filters_restrict_results(app):
    at = search(app)
    at.sidebar.multiselect(key="f_sex").set_value(["F"]).run()
    assert not at.exception
    rows = at.session_state.results.to_dicts()
    assert rows and all(r["sex"] == "F" for r in rows)
    at.sidebar.slider(key="f_age").set_value((50, 60)).run()
    assert all(50 <= r["age"] <= 60 for r in at.session_state.results.to_dicts())


def test_report_and_hybrid_modes(app):
    at = app
    for mode in ("report", "hybrid"):
        at.selectbox(key="q_mode").set_value(mode)
        at = search(at)
        assert result_keys(at) and at.session_state.mode == mode


def test_open_study_from_card(app):
    at = search(app)
    key = result_keys(at)[0]
    at.button(key=f"r_open_{key}").click().run()
    assert at.session_state.page == "Study" and at.session_state.study == key
    assert [t.value for t in at.title][0] == "Study"


def test_cards_show_measurements_and_lvef_filter(app):
    at = search(app)
    lines = [c.value for c in at.caption if c.value.startswith(("LVEF", "measurements:"))]
    assert len(lines) == N_STUDIES and any(line.startswith("LVEF ") and " %" in line for line in lines)
    assert any("not measured" in line for line in lines)                 # every 6th fake study has none
    at.sidebar.slider(key="f_lvef").set_value((0, 50)).run()
    assert not at.exception
    rows = at.session_state.results.to_dicts()
    assert rows and all(r["lvef"] is not None and r["lvef"] <= 50 for r in rows)


def test_a_search_is_shared_as_a_url_and_opened_from_one(app, ui_data, monkeypatch):
    at = search(app, "dilated left ventricle")
    assert at.query_params["q"] in ("dilated left ventricle", ["dilated left ventricle"])
    assert at.query_params["mode"] in ("hybrid", ["hybrid"]) and at.query_params["k"] in ("20", ["20"])
    from streamlit.testing.v1 import AppTest

    from tests.helpers.app_fixtures import APP
    monkeypatch.setenv("CMR_DATA", str(ui_data))
    fresh = AppTest.from_file(APP, default_timeout=120)
    fresh.query_params.update({"q": "dilated left ventricle", "mode": "image", "view": "cine", "k": "10",
                               "nonsense": "x"})
    fresh.run()
    assert not fresh.exception
    s = fresh.session_state
    assert (s.query, s.mode, s.view, s.k) == ("dilated left ventricle", "image", "cine", 10)
    assert len(result_keys(fresh)) == 10                      # the shared search ran, with its k


def _param(at, k):
    v = at.query_params.get(k)
    return v[0] if isinstance(v, list) else v


def test_filters_are_shared_in_the_url_and_opened_from_one(app, ui_data, monkeypatch):
    at = app
    at.sidebar.multiselect(key="f_sex").set_value(["F"])
    at.sidebar.slider(key="f_age").set_value((40, 80))
    at.sidebar.slider(key="f_lvef").set_value((0, 50))
    at = search(at)
    assert (_param(at, "f_sex"), _param(at, "f_age"), _param(at, "f_lvef")) == ("F", "40-80", "0-50")
    filtered = at.session_state.results["study_key"].to_list()
    from streamlit.testing.v1 import AppTest

    from tests.helpers.app_fixtures import APP
    monkeypatch.setenv("CMR_DATA", str(ui_data))
    fresh = AppTest.from_file(APP, default_timeout=120)
    fresh.query_params.update({"q": "dilated left ventricle", "f_sex": "F,X", "f_age": "40-80", "f_lvef": "0-50",
                               "f_from": "2019", "f_views": "cine_sax,nonsense", "f_fs": "7.0", "f_mass": "zz"})
    fresh.run()
    assert not fresh.exception, fresh.exception
    s = fresh.session_state
    assert (s.f_sex, s.f_age, s.f_lvef, s.f_from, s.f_views, s.f_fs) == (["F"], (40, 80), (0, 50), "2019",
                                                                        ["cine_sax"], "any")
    assert s.filters["sex"] == ["F"] and s.filters["age"] == (40.0, 80.0) and s.filters["lvef"] == (None, 50.0)
    fresh.sidebar.text_input(key="f_from").set_value("").run()
    fresh.sidebar.multiselect(key="f_views").set_value([]).run()
    assert fresh.session_state.results["study_key"].to_list() == filtered
    assert _param(fresh, "f_from") is None                 # a cleared filter leaves the address too


def test_cards_show_cosines_on_a_stated_scale_never_fused_numbers(app):
    """Hybrid: each card shows its rank and its cosines (report clause, image vector), the scale is stated,
    the fused RRF number is nowhere; each card marks the report clause that matched."""
    at = search(app)
    results = at.session_state.results
    fused = [f"{x:.3f}" for x in results["score"].to_list()]
    heads = [m.value for m in at.markdown if " y · " in m.value]
    assert len(heads) == N_STUDIES and heads[0].startswith("#1 · ")
    assert all("report cos **" in h and "image cos **" in h for h in heads)
    assert not any(f in h for h in heads for f in fused if f not in ("0.000",))
    assert any("cosines (-1..1)" in c.value for c in at.caption)
    why = at.session_state.why[results["study_key"][0]]
    assert why.best_clause and -1.0 <= why.cosines()["report_cosine"] <= 1.0
    marked = [h for h in at.get("html") if "matched:" in h.proto.body]
    assert len(marked) == N_STUDIES and "<mark>" in marked[0].proto.body


def test_image_mode_shows_the_cosine_it_ranked_by(app):
    at = app
    at.selectbox(key="q_mode").set_value("image")
    at = search(at)
    r = at.session_state.results.to_dicts()[0]
    head = next(m.value for m in at.markdown if " y · " in m.value)
    assert not head.startswith("#") and f"image cos **{r['score']:.2f}**" in head

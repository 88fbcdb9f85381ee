"""Map page: the kNN graph over the mapped studies (lines, tooltips) and the page with it."""
import numpy as np
import polars as pl

from tests.helpers.app_fixtures import app, goto, ui_data  # noqa: F401


def test_knn_edges_and_tooltip_text():
    from cmr_search.search.neighbours import neighbour_table
    from cmr_search.ui.app.screens.map import chart, knn_edges, neighbour_text
    rng = np.random.default_rng(0)
    keys = [f"s{i}" for i in range(8)]
    v = rng.normal(size=(8, 16))
    table = neighbour_table(keys, v, k=2)
    frame = pl.DataFrame({"study_key": keys, "x": np.arange(8.0), "y": np.zeros(8), "labels": ["A"] * 8})
    edges = knn_edges(frame, table)
    pairs = [(e["a"], e["b"]) for e in edges]
    assert len(pairs) == len(set(pairs)) and all(a < b for a, b in pairs)      # each pair once
    want = {tuple(sorted((a, b))) for a in keys for b, _ in table[a]}
    assert set(pairs) == want
    e = edges[0]
    assert (e["x"], e["x2"]) == (float(keys.index(e["a"])), float(keys.index(e["b"])))
    text = neighbour_text(table, "s0")
    assert text.count("(") == 2 and text.startswith(table["s0"][0][0])
    assert neighbour_text({}, "s0") == ""
    spec = chart(frame, "labels", edges).to_dict()
    assert len(spec["layer"]) == 2 and any(p.get("name") == "pick" for p in spec.get("params", []))
    assert "layer" not in chart(frame, "labels", []).to_dict()


def _spec(at) -> dict:
    import json
    charts = [n for n in at.main if getattr(n, "type", None) == "vega_lite_chart"]
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def test_map_page_draws_neighbours(app):
    at = goto(app, "Map")
    assert not at.exception, at.exception
    assert at.slider(key="map_k").value == 3
    lines, points = _spec(at)["layer"]
    edges, studies = lines["data"]["values"], points["data"]["values"]
    assert len(studies) == 12 and 12 * 3 // 2 <= len(edges) <= 12 * 3
    assert all(e["cosine"] <= 1.0001 and e["a"] < e["b"] for e in edges)
    assert all(s["neighbours"].count("(") == 3 for s in studies)
    at.slider(key="map_k").set_value(0).run()
    assert not at.exception, at.exception
    assert "layer" not in _spec(at)                                  # no lines
    at.slider(key="map_k").set_value(5).run()
    assert not at.exception, at.exception
    assert len(_spec(at)["layer"][0]["data"]["values"]) >= 12 * 5 // 2

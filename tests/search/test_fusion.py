"""Weighted reciprocal rank fusion and the image ranking's vote (search/fusion.py)."""
import math

from cmr_search.search.backends.base import RRF_K, Hit
from cmr_search.search.fusion import image_weight, weighted_rrf


def _hits(*keys):
    return [Hit(k, 0.0, {"study_key": k}) for k in keys]


def test_equal_weights_are_plain_rrf():
    fused = weighted_rrf({"a": _hits("x", "y", "z"), "b": _hits("y", "z", "x")}, {}, limit=3)
    assert [h.key for h in fused] == ["y", "x", "z"]
    assert math.isclose(fused[0].score, 1 / (RRF_K + 2) + 1 / (RRF_K + 1))


def test_a_weight_moves_the_vote_and_zero_drops_a_ranking():
    r = {"image": _hits("x", "y"), "report": _hits("y", "x")}
    assert [h.key for h in weighted_rrf(r, {"image": 2.0}, 2)] == ["x", "y"]
    assert [h.key for h in weighted_rrf(r, {"image": 0.0}, 2)] == ["y", "x"]
    assert [h.key for h in weighted_rrf({"image": _hits("q")}, {"image": 0.0}, 5)] == []


def test_image_weight_reflects_real_data_auc():
    assert image_weight({}) == 1.0 and image_weight(None) == 1.0
    card = {"eval_real": {"zero_shot": {"DCM": {"auc": 0.9}, "RV": {"auc": 0.7}}}}
    assert image_weight(card) == 0.6
    assert image_weight({"eval_real": {"zero_shot": {"NOR": {"auc": 0.2}}}}) == 0.0

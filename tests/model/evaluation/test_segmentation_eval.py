"""Segmentation evaluation helpers on toy inputs: Dice, EF from areas, summaries, the group probe and the
whole-set evaluations with a perfect and a blind segmenter."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cmr_search.model.evaluation.segmentation import (dice, dice_per_structure, ef_from_areas, evaluate_acdc,
                                                      evaluate_sunnybrook, group_probe, summary)


def test_dice_and_structures():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[:5, :5] = True
    assert dice(a, b) == pytest.approx(2 * 25 / 75)
    assert np.isnan(dice(np.zeros(4, bool), np.zeros(4, bool)))
    m = np.array([[0, 1, 2, 3]])
    assert dice_per_structure(m, m) == {"lv_cavity": 1.0, "lv_myocardium": 1.0, "rv_cavity": 1.0}
    with pytest.raises(ValueError, match="shape"):
        dice_per_structure(m, m.T)


def test_ef_and_summary():
    assert ef_from_areas([100, 100], [50, 50]) == pytest.approx(50.0)
    assert ef_from_areas([0], [0]) is None
    s = summary([1.0, 3.0, None, float("nan")])
    assert s == {"mean": 2.0, "std": 1.0, "median": 2.0, "n": 2}
    assert summary([])["mean"] is None


def test_group_probe_separates_toy_groups():
    rng = np.random.default_rng(0)
    ms, gs = [], []
    for k, g in enumerate("ABCDE"):                       # five groups on a circle in (lvef, lvedv)
        a = 2 * np.pi * k / 5
        for _ in range(4):
            ms.append({"lvef": 50 + 20 * np.cos(a) + rng.normal(0, 1), "lvedv": 150 + 50 * np.sin(a) + rng.normal(0, 2),
                       "rvef": None})
            gs.append(g)
    r = group_probe(ms, gs, seeds=3)
    assert r["accuracy"]["mean"] > 0.8 and r["chance"] == pytest.approx(0.2) and len(r["per_seed"]) == 3


def _ring_case(name, group):
    yy, xx = np.mgrid[:64, :64]
    d = np.hypot(yy - 32, xx - 28)
    masks = np.zeros((4, 2, 64, 64), np.uint8)
    for t, r in enumerate((14, 9)):
        masks[1:, t][:, (d < r + 5)] = 2
        masks[1:, t][:, (d < r)] = 3
        masks[:, t][:, (np.hypot(yy - 32, xx - 52) < 7)] = 1
    return SimpleNamespace(name=name, group=group, images=masks.astype(np.float32), masks=masks, spacing=(1.5, 1.5),
                           slice_mm=10.0, ed_es=(0, 1), height_cm=None, weight_kg=None)


def test_evaluate_acdc_perfect_and_blind():
    cases = [_ring_case(f"p{i}", g) for i, g in enumerate("AABB")]
    perfect = evaluate_acdc(cases, lambda imgs, sp: imgs.astype(np.uint8), probe_seeds=2)
    assert perfect["dice"]["lv_cavity"]["all"]["mean"] == 1.0 and perfect["ef_abs_error"]["lvef"]["mean"] == 0.0
    assert set(perfect["dice"]["rv_cavity"]) >= {"all", "ED", "ES", "by_group"}
    blind = evaluate_acdc(cases, lambda imgs, sp: np.zeros(imgs.shape, np.uint8), probe_seeds=2)
    assert blind["dice"]["lv_cavity"]["all"]["mean"] == 0.0 and blind["ef_abs_error"]["lvef"]["n"] == 0


def test_evaluate_sunnybrook_on_contoured_images():
    case = _ring_case("s1", None)
    case.contours = [{"slice": s, "phase": t, "cavity": case.masks[s, t] == 3,
                      "myocardium": (case.masks[s, t] == 2) if t == 0 else None} for s in (1, 2) for t in (0, 1)]
    for whole in (True, False):
        r = evaluate_sunnybrook([case], lambda imgs, sp: imgs.astype(np.uint8), whole_cine=whole)
        assert r["n_images"] == 4 and r["dice"]["lv_cavity"]["mean"] == 1.0
        assert r["dice"]["lv_myocardium"]["n"] == 2
        assert r["lvef_abs_error_same_slices"]["mean"] == pytest.approx(0.0)
        assert r["per_case"][0]["lvef_contours"] == pytest.approx((1 - 81 / 196) * 100, abs=3)

"""Real-data group metrics (model.evaluation.real) on toy vectors whose answer is known."""
import numpy as np

from cmr_search.model.evaluation.real import (ACDC_GROUPS, ACDC_GROUP_PROMPTS, format_real_markdown,
                                              precision_at_k, real_group_metrics, repeated_probe)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(spread, seed=0, per=4):
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(5, 32)))
    labels = np.repeat(ACDC_GROUPS, per)
    video = _unit(np.repeat(centres, per, 0) + spread * rng.normal(size=(5 * per, 32)))
    prompts = {g: _unit(centres[i] + 0.05 * rng.normal(size=(3, 32))) for i, g in enumerate(ACDC_GROUPS)}
    return video, labels, prompts


def test_separated_groups_score_perfectly():
    video, labels, prompts = _clusters(0.05)
    res = real_group_metrics(video, labels, prompts, raw=video, folds=4, repeats=3)
    assert res["probe"]["accuracy"]["mean"] == 1.0 and res["probe"]["accuracy"]["n"] == 3
    assert res["study_to_study"]["mean"] == 1.0 and res["study_to_study"]["k"] == 3
    assert all(z["auc"] == 1.0 for z in res["zero_shot"].values()) and set(res["zero_shot"]) == set(ACDC_GROUPS)
    assert res["groups"] == {g: 4 for g in ACDC_GROUPS} and res["probe_raw_pixels"]["accuracy"]["mean"] == 1.0
    md = format_real_markdown(res, "toy")
    assert "5-group probe accuracy (4-fold, 3 repeats; sd over repeats; chance 0.20) | 1.00 +- 0.00" in md


def test_noise_scores_near_chance():
    rng = np.random.default_rng(1)
    labels = np.repeat(ACDC_GROUPS, 12)
    video = _unit(rng.normal(size=(60, 32)))
    probe = repeated_probe(video, labels, list(ACDC_GROUPS), folds=4, repeats=5)
    assert probe["accuracy"]["mean"] < 0.4 and probe["chance"] == 0.2
    assert precision_at_k(video, labels)["mean"] < 0.4


def test_precision_at_k_counts_the_top_k_others():
    deg = np.radians([0, 3, 20, 85, 90])
    video = np.stack([np.cos(deg), np.sin(deg)], 1)
    labels = np.array(["A", "A", "B", "B", "B"], object)
    p = precision_at_k(video, labels, k=1)
    # nearest other: 0->1 (A, hit), 1->0 (hit), 2->1 (A, miss), 3->4 (hit), 4->3 (hit)
    assert p["by_group"] == {"A": 1.0, "B": 2 / 3} and abs(p["mean"] - 0.8) < 1e-9


def test_prompts_name_each_group_plainly_first():
    assert set(ACDC_GROUP_PROMPTS) == set(ACDC_GROUPS)
    assert ACDC_GROUP_PROMPTS["MINF"][0] == "previous myocardial infarction"
    assert ACDC_GROUP_PROMPTS["RV"][0] == "abnormal right ventricle"

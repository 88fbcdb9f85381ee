"""Metric functions on toy inputs with known answers, and evaluate() on a fake cache."""
import math

import numpy as np
import pytest

from cmr_search.model import evaluate as ev


def test_ranks_recall_and_median():
    sim = np.array([[0.9, 0.1, 0.0],      # true item 0 first            -> rank 1
                    [0.8, 0.5, 0.1],      # true item 1 second           -> rank 2
                    [0.7, 0.6, 0.1]])     # true item 2 last             -> rank 3
    r = ev.ranks_of_targets(sim, np.eye(3, dtype=bool))
    assert r.tolist() == [1, 2, 3]
    assert ev.recall_at_k(r, 1) == pytest.approx(1 / 3) and ev.recall_at_k(r, 2) == pytest.approx(2 / 3)
    assert ev.median_rank(r) == 2
    tie = ev.ranks_of_targets(np.array([[0.5, 0.5]]), np.array([[True, False]]))
    assert tie.tolist() == [2]                                        # ties count against the query
    m = ev.retrieval_metrics(sim, ["a", "b", "a"])
    assert m["exact"]["R@1"] == pytest.approx(1 / 3) and m["exact"]["median_rank"] == 2
    # same label: query 2 ("a") finds item 0 ("a") first -> rank 1; query 1 ("b") only itself -> rank 2
    assert m["same_label"]["R@1"] == pytest.approx(2 / 3) and m["same_label"]["median_rank"] == 1


def test_auc_f1_accuracy_threshold():
    y = np.array([0, 0, 1, 1])
    assert ev.roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert ev.roc_auc(y, [1, 2, 3, 4]) == 1.0 and ev.roc_auc(y, [4, 3, 2, 1]) == 0.0
    assert ev.roc_auc(y, [1, 1, 1, 1]) == 0.5                         # ties -> mid-ranks
    assert math.isnan(ev.roc_auc([1, 1], [0.2, 0.3]))
    assert ev.f1_score([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert ev.f1_score([0, 0], [0, 0]) == 0.0
    assert ev.accuracy(np.array([1, 0, 1]), np.array([1, 1, 1])) == pytest.approx(2 / 3)
    assert ev.macro_f1(np.array(["a", "b"]), np.array(["a", "a"]), ["a", "b"]) == pytest.approx((2 / 3 + 0) / 2)
    t = ev.youden_threshold(y, [0.1, 0.2, 0.7, 0.9])
    assert 0.2 < t < 0.7
    m = ev.binary_metrics(y, np.array([0.1, 0.2, 0.7, 0.9]), t)
    assert m["f1"] == 1.0 and m["accuracy"] == 1.0 and m["auc"] == 1.0 and m["positives"] == 2


def _clusters(n_per, classes, seed=0, dim=16, spread=0.05):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(classes), dim)) * 3
    x = np.concatenate([c + spread * rng.standard_normal((n_per, dim)) for c in centres])
    y = np.repeat(np.asarray(classes, object), n_per)
    return x, y


def test_few_shot_separates_clusters():
    x, y = _clusters(40, ["a", "b", "c"])
    xt, yt = _clusters(10, ["a", "b", "c"], seed=0)                    # same centres, fresh draws
    res = ev.few_shot(x, y, xt, yt, ["a", "b", "c"], shots=(1, 4), episodes=10)
    assert res["1"]["accuracy"]["mean"] == 1.0 and res["4"]["auc"]["mean"] == 1.0
    assert res["4"]["accuracy"]["sd"] == 0.0
    b = ev.few_shot(x[:80], y[:80], xt[:20], yt[:20], ["a", "b"], shots=(2,), episodes=5)
    assert b["2"]["f1"]["mean"] == 1.0 and b["2"]["auc"]["mean"] == 1.0
    assert "skipped" in ev.few_shot(x[:40], y[:40], xt, yt, ["a", "b"], shots=(1,), episodes=2)


def test_few_shot_is_chance_on_noise():
    rng = np.random.default_rng(1)
    x, xt = rng.standard_normal((200, 8)), rng.standard_normal((400, 8))
    y, yt = rng.integers(0, 2, 200).astype(str), rng.integers(0, 2, 400).astype(str)
    res = ev.few_shot(x, y, xt, yt, ["0", "1"], shots=(8,), episodes=50)
    assert 0.4 < res["8"]["auc"]["mean"] < 0.6


def test_stratified_folds_and_linear_probe():
    y = np.array(["a"] * 10 + ["b"] * 5)
    f = ev.stratified_folds(y, 5)
    for k in range(5):
        assert (y[f == k] == "a").sum() == 2 and (y[f == k] == "b").sum() == 1
    x, y = _clusters(20, ["a", "b", "c"], spread=0.5)
    res = ev.linear_probe(x, y, ["a", "b", "c"])
    assert res["accuracy"] == 1.0 and res["auc"] == 1.0 and res["n"] == 60
    rng = np.random.default_rng(0)
    noise = ev.linear_probe(rng.standard_normal((100, 4)), rng.integers(0, 2, 100).astype(str), ["0", "1"])
    assert 0.3 < noise["auc"] < 0.7


def test_zero_shot_scores_use_prompt_means():
    from cmr_search.model.prompts import DIAGNOSES, DIAGNOSIS_PROMPTS, FINDING_PROMPTS, REFERENCE_FINDING_PROMPTS, all_prompts
    rng = np.random.default_rng(0)
    emb = {p: v / np.linalg.norm(v) for p, v in zip(all_prompts(), rng.standard_normal((len(all_prompts()), 8)))}
    video = np.eye(8)[:3]
    s = ev.zero_shot_scores(video, emb)
    assert len(s) == len(DIAGNOSES) + len(FINDING_PROMPTS) + len(REFERENCE_FINDING_PROMPTS)
    want = np.mean([video @ emb[p] for p in DIAGNOSIS_PROMPTS["HCM"]], 0)
    assert np.allclose(s["dx:HCM"], want)
    d = FINDING_PROMPTS["lge_present"]
    want = np.mean([video @ emb[p] for p in d["pos"]], 0) - np.mean([video @ emb[p] for p in d["neg"]], 0)
    assert np.allclose(s["finding:lge_present"], want)
    want = np.mean([video @ emb[p] for p in REFERENCE_FINDING_PROMPTS["lv_hypertrophy"]], 0)   # no neg
    assert np.allclose(s["finding_ref:lv_hypertrophy"], want)


def test_evaluate_on_a_fake_cache(tmp_path, tiny_model):
    from tests.helpers.cache_helpers import make_fake_cache
    from cmr_search.model.data import CacheDataset
    ds = CacheDataset(make_fake_cache(tmp_path, n=32), tiny_model.clip_spec)
    mask = np.arange(32) % 2 == 1
    res = ev.evaluate(tiny_model, ds, mask, shots=(1, 2), episodes=3, folds=2)
    assert set(res["groups"]) == {"train", "test"} and res["n_evaluated"] == 16
    g = res["groups"]["train"]
    assert g["retrieval"]["study_to_report"]["exact"]["R@10"] >= g["retrieval"]["study_to_report"]["exact"]["R@1"]
    assert set(g["zero_shot"]["diagnosis"]) >= {"NICM", "NORMAL", "top1_accuracy_6way"}
    assert "lv_dilation" in g["zero_shot"]["findings"] and "2" in g["few_shot"]["diagnosis"]
    ref_prompts = g["zero_shot"]["findings_reference_prompts"]
    assert "lv_dilation" in ref_prompts and "pericardial_effusion" not in ref_prompts   # no reference set
    md = ev.format_markdown(res)
    assert "| train wording" in md and "Linear probe" in md and "the reference's prompt sets" in md
    assert res["prompts"]["diagnosis"]["ICM"][0].startswith("scar in the LAD territory")   # recorded

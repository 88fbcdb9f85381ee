"""Zero-shot scores and evaluate() on a fake cache, with its markdown report."""
import numpy as np

from cmr_search.model.evaluation import evaluate as ev
from cmr_search.model.evaluation.report import format_markdown


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
    from cmr_search.model.training.data import CacheDataset
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
    md = format_markdown(res)
    assert "| train wording" in md and "Linear probe" in md and "the reference's prompt sets" in md
    assert res["prompts"]["diagnosis"]["ICM"][0].startswith("scar in the LAD territory")   # recorded

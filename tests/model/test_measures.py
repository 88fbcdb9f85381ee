"""Measurement features and the measure head (model/measures.py), and a head trained on a small cache
(model/training/measure_head.py): the study vector learns its report from the numbers alone."""
import numpy as np
import torch

from cmr_search.model.measures import MEASURES, N_FEATURES, REFERENCE, measure_features, measure_matrix


def test_features_are_clipped_z_scores_with_presence_flags():
    x = measure_features({"lvef": 28.0, "lvedv": 285.0, "max_wall": 100.0, "seg_quality": "good"})
    m = len(MEASURES)
    j = MEASURES.index
    assert np.isclose(x[j("lvef")], (28 - REFERENCE["lvef"][0]) / REFERENCE["lvef"][1])
    assert np.isclose(x[j("lvedvi")], (285 / 1.9 - REFERENCE["lvedvi"][0]) / REFERENCE["lvedvi"][1])  # from LVEDV
    assert x[j("max_wall")] == 6.0                                                   # clipped
    assert x[m + j("lvef")] == 1 and x[m + j("rvef")] == 0 and x[j("rvef")] == 0
    assert not measure_features({"lvef": 28.0, "seg_quality": "poor"}).any()         # masks not trusted
    assert not measure_features(None).any() and measure_matrix([None, {}]).shape == (2, N_FEATURES)


def test_a_new_head_changes_nothing_until_trained(tiny_model):
    from dataclasses import replace
    from cmr_search.model.model import CMRClip
    m = CMRClip(replace(tiny_model.cfg, measure_head=True), tokenizer=tiny_model.tokenizer).eval()
    m.load_state_dict(tiny_model.state_dict(), strict=False)
    f, v, k = torch.rand(2, 4, 32, 32), torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool)
    x = torch.as_tensor(measure_matrix([{"lvef": 20.0}, {"lvef": 70.0}]))
    with torch.no_grad():
        assert torch.allclose(m.encode_video(f, v, k, x), tiny_model.eval().encode_video(f, v, k), atol=1e-6)


def test_trained_head_finds_the_report_from_the_numbers(tmp_path):
    """Video swap 1.0: the images never match their report, so only the measurements can; the fake
    cache's measurements follow its class. Study -> report same-class top-1 rises from chance."""
    from cmr_search.model.checkpoint import save_checkpoint
    from cmr_search.model.embed import embed_clips, embed_texts
    from cmr_search.model.factory import create_model
    from cmr_search.model.model import CMRClip
    from cmr_search.model.training.data import CacheDataset
    from cmr_search.model.training.measure_head import MeasureHeadRecipe, train_measure_head
    from tests.helpers.cache_helpers import make_fake_cache
    from tests.helpers.model_helpers import small_config
    cache = make_fake_cache(tmp_path / "cache", n=48)
    base = save_checkpoint(CMRClip(small_config()), tmp_path / "base")
    out = train_measure_head([str(cache)], str(base), str(tmp_path / "measured"),
                             MeasureHeadRecipe(steps=150, batch=48, swap=1.0, noise=0.0, drop=0.0, lr=3e-3))
    model = create_model(str(out))
    assert model.cfg.measure_head and (out / "card.json").exists()
    ds = CacheDataset(cache, model.clip_spec)
    measured = ds.measure_features()[:, len(MEASURES):].sum(1) > 0
    labels = np.array(ds.labels, object)
    text = embed_texts(model, ds.texts)

    def top1(m):
        video = embed_clips(m, ds.eval_batches(16))
        best = (video @ text.T).argmax(1)
        return float(np.mean(labels[best][measured] == labels[measured]))
    assert top1(model) >= 0.8 > top1(create_model(str(base))) + 0.3


def test_a_measure_head_changes_the_model_id(tiny_model):
    """An index built without the head must be re-embedded by a model with one (search.collection.model_id)."""
    from dataclasses import replace
    from cmr_search.model.model import CMRClip
    from cmr_search.search.collection import model_id
    m = CMRClip(replace(tiny_model.cfg, measure_head=True), tokenizer=tiny_model.tokenizer)
    m.load_state_dict(tiny_model.state_dict(), strict=False)
    assert model_id(m) != model_id(tiny_model) and model_id(m).startswith(tiny_model.cfg.name)

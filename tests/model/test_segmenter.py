"""model.segmentation: the segmenter's API (checkpoint folder, batch inference, post-processing) and
its training run on a few synthetic slices."""
import json

import numpy as np
import pytest
import torch

from cmr_search.model.errors import CheckpointError, DataError
from cmr_search.model.segmentation import Segmenter, load_seg_config
from cmr_search.model.segmentation.postprocess import clean_slice, clean_stack
from cmr_search.model.segmentation.segmenter import resolve_seg_checkpoint
from cmr_search.model.segmentation.train import SegRecipe, load_shards, loss_fn, recipe_from_args, train


def test_configs_load_and_unknown_names_list_the_choices():
    assert load_seg_config("seg-unet-small").channels[0] == 16
    with pytest.raises(CheckpointError, match="seg-unet-tiny"):
        load_seg_config("seg-unet-nope")


def test_segment_keeps_the_input_grid_for_any_size_and_spacing():
    seg = Segmenter.untrained()
    for shape, sp in (((3, 50, 70), (1.3, 1.3)), ((2, 33, 33), (2.5, 2.0))):
        out = seg.segment(np.random.rand(*shape).astype(np.float32), sp)
        assert out.shape == shape and out.dtype == np.uint8
    stack = np.random.rand(2, 3, 40, 40).astype(np.float32)
    assert seg.segment_cine(stack, (2.0, 2.0)).shape == stack.shape
    with pytest.raises(ValueError, match="slices, phases"):
        seg.segment_cine(stack[0], (2.0, 2.0))


def test_inference_does_not_depend_on_the_batch():
    seg = Segmenter.untrained(seed=3)
    x = np.random.default_rng(0).random((5, 48, 48)).astype(np.float32)
    a = seg.probabilities(x, (2.0, 2.0), batch=5)
    b = np.concatenate([seg.probabilities(x[i:i + 1], (2.0, 2.0)) for i in range(5)])
    assert np.allclose(a, b, atol=1e-5)


def test_eight_test_time_views_make_the_output_follow_a_flip_or_rotation_of_the_input():
    seg = Segmenter.untrained(seed=5)
    x = np.random.default_rng(1).random((2, 48, 48)).astype(np.float32)
    plain = seg.probabilities(x, (2.0, 2.0))
    assert not np.allclose(seg.probabilities(x[:, :, ::-1].copy(), (2.0, 2.0))[:, :, :, ::-1], plain, atol=1e-4)
    seg.cfg.tta = 8
    p = seg.probabilities(x, (2.0, 2.0))
    assert np.allclose(p.sum(1), 1.0, atol=1e-5) and not np.allclose(p, plain, atol=1e-4)
    flipped = seg.probabilities(x[:, :, ::-1].copy(), (2.0, 2.0))[:, :, :, ::-1]
    turned = np.rot90(seg.probabilities(np.rot90(x, 1, (1, 2)).copy(), (2.0, 2.0)), -1, (2, 3))
    assert np.allclose(flipped, p, atol=1e-5) and np.allclose(turned, p, atol=1e-5)
    assert Segmenter.untrained(seed=5).fingerprint != seg.fingerprint     # a cache measured otherwise is redone


def test_checkpoint_round_trip_and_clear_errors(tmp_path, monkeypatch):
    seg = Segmenter.untrained(seed=1)
    folder = seg.save(tmp_path / "ck", {"note": "test"})
    back = Segmenter.load(folder)
    assert back.fingerprint == seg.fingerprint and back.card["note"] == "test"
    assert json.loads((folder / "card.json").read_text())["format"] == "cmr-search/segmenter-1"
    monkeypatch.setenv("CMR_SEG_CHECKPOINT", str(folder))
    assert resolve_seg_checkpoint() == folder
    with pytest.raises(CheckpointError, match="not a segmenter checkpoint folder"):
        Segmenter.load(tmp_path)
    (folder / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        Segmenter.load(folder)


def test_postprocess_keeps_one_lv_and_the_rv_beside_it():
    lab = np.zeros((60, 60), np.uint8)
    yy, xx = np.mgrid[:60, :60]
    r = np.hypot(yy - 30, xx - 30)
    lab[r < 12] = 2
    lab[r < 8] = 3
    lab[(np.hypot(yy - 30, xx - 16) < 6) & (r >= 12)] = 1       # RV beside the LV
    lab[2:6, 2:6] = 3                                             # stray island
    lab[54:58, 54:58] = 1                                         # far RV-like blob
    out = clean_slice(lab, (2.0, 2.0))
    assert out[3, 3] == 0 and out[56, 56] == 0
    assert out[30, 30] == 3 and (out == 1).sum() > 0


def test_postprocess_closes_a_gap_in_the_myocardial_ring():
    from cmr_search.model.segmentation.measure import ring_closed
    lab = np.zeros((60, 60), np.uint8)
    yy, xx = np.mgrid[:60, :60]
    r = np.hypot(yy - 30, xx - 30)
    lab[r < 12] = 2
    lab[r < 8] = 3
    lab[(yy < 30) & (np.abs(xx - 30) < 3) & (r >= 8)] = 0          # a gap in the wall (outflow-like)
    assert not ring_closed(lab == 2, lab == 3)
    out = clean_slice(lab, (1.5, 1.5))
    assert ring_closed(out == 2, out == 3)
    assert (out == 3).sum() == (lab == 3).sum()                   # the cavity is not touched
    assert out[0, 0] == 0 and (out == 2).sum() < 1.2 * (r < 12).sum()   # wall of the slice's thickness


def test_loss_is_low_for_the_right_answer():
    y = torch.zeros(2, 16, 16, dtype=torch.long)
    y[:, 4:12, 4:12] = 3
    y[:, 6:10, 6:10] = 2
    good = torch.nn.functional.one_hot(y, 4).permute(0, 3, 1, 2).float() * 20
    bad = torch.zeros_like(good)
    assert loss_fn(good, y, 1.0)[0] < loss_fn(bad, y, 1.0)[0]
    assert loss_fn(good, y, 1.0)[1] > 0.99


def _shards(folder, n=24, size=32):
    rng = np.random.default_rng(0)
    labels = np.zeros((n, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx = rng.integers(10, 22, 2)
        r = np.hypot(yy - cy, xx - cx)
        labels[i][r < 7] = 2
        labels[i][r < 4] = 3
    images = (labels == 3) * 0.9 + (labels == 2) * 0.2 + 0.1 + rng.normal(0, 0.02, labels.shape)
    folder.mkdir()
    np.savez(folder / "shard-00000.npz", images=images.astype(np.float16), labels=labels)
    return folder


def test_training_writes_a_loadable_checkpoint_that_learned(tmp_path):
    data = _shards(tmp_path / "data")
    r = SegRecipe(data=str(data), out=str(tmp_path / "ck"), config="seg-unet-tiny", steps=150, batch=8,
                  lr=3e-3, warmup=5, save_every=100, log_every=10, threads=1)
    out = train(r, log=lambda row: None)
    seg = Segmenter.load(out)
    assert seg.card["recipe"]["steps"] == 150 and seg.card["trained_on"].startswith("synthetic")
    lines = (out / "train" / "log.jsonl").read_text().splitlines()
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert last["loss"] < first["loss"]
    images, labels, _ = load_shards(data)
    pred = seg.segment(images[:8].astype(np.float32), (2.0, 2.0), clean=False) >= 2
    truth = labels[:8] >= 2
    assert 2 * (pred & truth).sum() / (pred.sum() + truth.sum()) > 0.6      # the heart, found


def test_training_reads_several_data_folders(tmp_path):
    from cmr_search.phantom.randomized import write_shards
    from cmr_search.phantom.randomized.scene import SceneConfig
    small = SceneConfig(size=48, pixel_mm=(3.5, 4.5))
    a = write_shards(tmp_path / "a", hearts=1, seed=0, workers=1, per_heart=2, cfg=small)
    b = write_shards(tmp_path / "b", hearts=1, seed=1, workers=1, per_heart=3, cfg=small)
    images, labels, recipes = load_shards(f"{a},{b}")
    assert images.shape[0] == labels.shape[0] == 5 and [r["seed"] for r in recipes] == [0, 1]


def test_training_data_errors_say_how_to_recover(tmp_path):
    with pytest.raises(DataError, match="cmr synth seg|cmr synth --seg"):
        load_shards(tmp_path)
    assert recipe_from_args(["--task", "seg", "--data", "d", "--out", "o", "--steps", "5"]).steps == 5


def test_stack_cleaning_follows_the_lv_axis_not_the_largest_blob():
    yy, xx = np.mgrid[:80, :80]
    stack = np.zeros((5, 80, 80), np.uint8)
    for i, radius in enumerate((14, 14, 12, 8, 3)):           # base -> apex, LV at (40, 40)
        r = np.hypot(yy - 40, xx - 40)
        stack[i][r < radius + 4] = 2
        stack[i][r < radius] = 3
    stray = np.hypot(yy - 10, xx - 70) < 7                      # apical slice: a bigger blob far away
    stack[4][stray] = 3

    cleaned = clean_stack(stack, (2.0, 2.0))
    assert cleaned[4][stray].sum() == 0 and cleaned[4][40, 40] == 3
    assert (cleaned[:4] == stack[:4]).all()


def test_a_second_stage_starts_from_the_first_stages_weights(tmp_path):
    data = _shards(tmp_path / "data")
    first = train(SegRecipe(data=str(data), out=str(tmp_path / "a"), config="seg-unet-tiny", steps=2, batch=4,
                            warmup=1, threads=1), log=lambda row: None)
    second = train(SegRecipe(data=str(data), out=str(tmp_path / "b"), config="seg-unet-tiny", steps=1, batch=4,
                             warmup=1, lr=1e-9, threads=1, init=str(first)), log=lambda row: None)
    a, b = Segmenter.load(first), Segmenter.load(second)
    assert b.card["init_card"]["recipe"]["steps"] == 2
    wa, wb = dict(a.net.named_parameters()), dict(b.net.named_parameters())   # (BN running stats move)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa)


def test_class_argmax_is_argmax_with_the_first_class_on_ties():
    from cmr_search.model.segmentation.segmenter import class_argmax
    p = torch.rand(3, 4, 9, 7)
    p[:, 3] = p[:, 1]                                    # ties between classes 1 and 3 everywhere
    p[0, :, 0, 0] = 0.25                                 # a four-way tie
    got = class_argmax(p)
    assert got.dtype == torch.uint8 and torch.equal(got.long(), p.argmax(1)) and got[0, 0, 0] == 0

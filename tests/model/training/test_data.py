"""CacheDataset, BatchStream (determinism, seek-resume, DDP sharding) and the study-level hold-out."""
import itertools

import numpy as np
import pytest

from cmr_search.model.preprocess import ClipSpec
from cmr_search.model.errors import DataError
from cmr_search.model.training.data import BatchStream, CacheDataset, holdout_mask, read_keys

from tests.helpers.cache_helpers import make_fake_cache

SPEC = ClipSpec(layout=(("cine_sax", 6), ("cine_2ch", 2), ("cine_3ch", 2), ("lge_sax", 2), ("lge_2ch", 1)), size=16)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_fake_cache(tmp_path_factory.mktemp("cache"), n=24)


def test_items_clips_and_truth(cache):
    ds = CacheDataset(cache, SPEC)
    assert len(ds) == 24
    frames, ids, mask, text, label = ds[1]
    assert frames.shape == (13, 16, 16) and frames.dtype == np.float32
    assert ids.shape == mask.shape == (13,)
    assert not mask[8:10].any() and mask[:8].all()                    # cine_3ch missing -> masked
    assert text.startswith("1. inferior infarct scar") and label == "ICM"
    again = ds.clip(1)                                               # second read comes from memory
    assert np.allclose(again[0], frames, atol=1e-3) and np.array_equal(again[2], mask)
    f = ds.findings()
    assert set(f) >= {"lv_dilation", "pericardial_effusion"} and f["lv_dilation"].shape == (24,)
    lge_off = ds.clip(1, drop=("lge_sax", "lge_2ch"))[2]
    assert not lge_off[10:].any() and lge_off[:8].all()


def test_filters(cache, tmp_path):
    assert set(CacheDataset(cache, SPEC, split="test").splits) == {"test"}
    ds = CacheDataset(cache, SPEC, keys=["k0_0003", "k0_0005"], exclude=["k0_0005"])
    assert ds.keys == ["k0_0003"]
    (tmp_path / "keys.txt").write_text("# held out\nk0_0001\nk0_0002\n")
    assert read_keys(tmp_path / "keys.txt") == ["k0_0001", "k0_0002"]
    with pytest.raises(DataError, match="cmr prepare"):
        CacheDataset(tmp_path / "nothing", SPEC)


def test_several_caches_are_one_dataset_and_a_study_in_two_is_refused(cache, tmp_path):
    other = make_fake_cache(tmp_path / "site-b", n=6, seed=1, with_truth=False)   # other keys, no truth
    ds = CacheDataset([cache, other], SPEC)
    assert len(ds) == 30 and ds.keys[24:] == [f"k1_{i:04d}" for i in range(6)]
    assert ds.labels[24:] == [None] * 6 and ds.labels[1] == "ICM"
    alone = CacheDataset(other, SPEC)
    assert np.array_equal(ds.clip(26)[0], alone.clip(2)[0])          # arrays read from their own cache
    assert ds.summary()["cache"] == [str(cache.resolve()), str(other.resolve())]
    with pytest.raises(DataError, match="more than one of the caches"):
        CacheDataset([cache, cache], SPEC)


def test_holdout_is_deterministic_and_about_the_fraction():
    keys = [f"study{i}" for i in range(5000)]
    m = holdout_mask(keys, 0.2)
    assert np.array_equal(m, holdout_mask(list(reversed(keys)), 0.2)[::-1])   # per key, order-free
    assert 0.18 < m.mean() < 0.22
    assert (holdout_mask(keys, 0.1) <= m).all()                              # nested fractions


def _flat(batches):
    return [None if b is None else (b[0].sum().round(3), tuple(b[3])) for b in batches]


def test_stream_is_deterministic_and_seeks(cache):
    ds = CacheDataset(cache, SPEC)
    s = BatchStream(ds, batch_size=8, seed=3, epochs=3)
    assert s.steps_per_epoch == 3 and s.total_steps == 9
    full = list(s(0))
    assert len(full) == 9
    assert _flat(full) == _flat(BatchStream(ds, 8, seed=3, epochs=3, prefetch=False)(0))
    assert _flat(list(s(5))) == _flat(full[5:])                       # resume by seeking
    epoch0 = sorted(t for b in full[:3] for t in b[3])
    assert epoch0 == sorted(ds.texts)                                # one epoch = every study once
    assert [b[3] for b in full[:3]] != [b[3] for b in full[3:6]]       # reshuffled per epoch
    other = list(BatchStream(ds, 8, seed=4, epochs=1)(0))
    assert [b[3] for b in other] != [b[3] for b in full[:3]]


def test_ddp_shards_concatenate_to_the_single_process_batch(cache):
    ds = CacheDataset(cache, SPEC)
    one = list(BatchStream(ds, 8, seed=0, epochs=2)(0))
    r0 = list(BatchStream(ds, 8, seed=0, epochs=2, world=2, rank=0)(0))
    r1 = list(BatchStream(ds, 8, seed=0, epochs=2, world=2, rank=1)(0))
    assert len(r0) == len(r1) == 2 * len(one)
    assert all(b is None for b in r0[1::2]) and all(b is None for b in r1[0::2])   # others' slots skipped
    for g, b in enumerate(one):
        assert list(r0[2 * g][3]) + list(r1[2 * g + 1][3]) == list(b[3])
        assert np.array_equal(np.concatenate([r0[2 * g][0], r1[2 * g + 1][0]]), b[0])
    with pytest.raises(DataError, match="divisible"):
        BatchStream(ds, 7, world=2)
    with pytest.raises(DataError, match="lower --batch"):
        BatchStream(ds, 64)


def test_trainer_resume_skips_by_seeking(cache, tmp_path, tiny_cfg):
    """Trainer.fit(stream) after an interruption sees the same batches as an uninterrupted run."""
    import torch
    from cmr_search.model.model import CMRClip
    from cmr_search.model.training.trainer import TrainConfig, Trainer
    ds = CacheDataset(cache, tiny_cfg.clip_spec())

    def run(out, max_steps=None):
        torch.manual_seed(0)
        tr = Trainer(CMRClip(tiny_cfg), TrainConfig(out_dir=str(out), total_steps=6, warmup_steps=1,
                                                     ckpt_every=100, seed=0), device="cpu")
        return tr.fit(BatchStream(ds, 8, seed=0, epochs=2), max_steps=max_steps)["losses"]
    full = run(tmp_path / "a")
    first = run(tmp_path / "b", max_steps=2)
    rest = run(tmp_path / "b")
    assert np.allclose(first + rest, full, atol=1e-5)

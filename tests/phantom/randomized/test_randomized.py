"""phantom.randomized: random cuts with exact ACDC-convention labels, reproducible, varied."""
import numpy as np

from cmr_search.phantom.imaging.labels import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cmr_search.phantom.randomized import sample_slices, write_shards
from cmr_search.phantom.randomized.appearance import draw_contrast, GROUP_OF
from cmr_search.phantom.randomized.scene import SceneConfig

SMALL = SceneConfig(size=48, pixel_mm=(3.5, 4.5))


def test_slices_have_images_and_labels_of_the_same_grid():
    images, labels = sample_slices(0, 1, 6, SMALL)
    assert images.shape == labels.shape == (6, 48, 48)
    assert images.dtype == np.float32 and labels.dtype == np.uint8
    assert np.isfinite(images).all()
    assert set(np.unique(labels)) <= {0, 1, 2, 3}


def test_same_seed_same_slices_other_heart_other_slices():
    a, la = sample_slices(3, 2, 3, SMALL)
    b, lb = sample_slices(3, 2, 3, SMALL)
    c, lc = sample_slices(3, 5, 3, SMALL)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_cuts_through_the_heart_show_all_three_structures():
    found = set()
    for heart in range(6):
        _, labels = sample_slices(1, heart, 8, SMALL)
        found |= set(np.unique(labels).tolist())
    assert {RV_CAVITY, LV_MYOCARDIUM, LV_CAVITY} <= found


def test_blood_pools_share_a_draw_and_papillary_muscle_looks_like_myocardium():
    assert GROUP_OF[5] == GROUP_OF[6] == "blood"
    assert GROUP_OF[10] == GROUP_OF[17] == "heart_muscle"
    rng = np.random.default_rng(0)
    means, _, _ = draw_contrast(rng)
    assert abs(means[10] - means[17]) < 0.2        # jitter only


def test_contrast_is_not_always_physical():
    rng = np.random.default_rng(1)
    blood_brighter = [m[5] > m[10] for m, _, _ in (draw_contrast(rng) for _ in range(200))]
    assert 0.55 < np.mean(blood_brighter) < 0.95     # random mode inverts it a good share of the time


def test_shards_are_written_once_and_resumable(tmp_path):
    import dataclasses
    out = write_shards(tmp_path / "s", hearts=2, seed=0, workers=1, per_heart=2, per_shard=1)
    names = sorted(p.name for p in out.glob("shard-*.npz"))
    assert names == ["shard-00000.npz", "shard-00001.npz"]
    with np.load(out / names[0]) as z:
        assert z["images"].shape[0] == z["labels"].shape[0] == 2
    mtime = (out / names[0]).stat().st_mtime_ns
    write_shards(out, hearts=2, seed=0, workers=1, per_heart=2, per_shard=1)
    assert (out / names[0]).stat().st_mtime_ns == mtime
    assert (out / "recipe.json").exists()

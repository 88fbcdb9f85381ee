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


def test_rv_variety_widens_the_rv_and_leaves_old_seeds_alone():
    import dataclasses
    from cmr_search.phantom.randomized.scene import RandomRV, RedrawnRVHeart, draw_heart
    plain = [sample_slices(4, h, 4, SMALL) for h in range(3)]
    again = [sample_slices(4, h, 4, dataclasses.replace(SMALL, rv_variety=0.0, es_share=0.0)) for h in range(3)]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(plain, again))      # 0 draws nothing extra
    rng = np.random.default_rng(0)
    rvs = [RandomRV.draw(rng) for _ in range(200)]
    arcs = np.array([r.insertion_deg[1] - r.insertion_deg[0] for r in rvs])
    assert arcs.min() >= 90 and arcs.max() > 140                         # beyond the fixed 120 deg arc
    assert max(r.base_width for r in rvs) > 1.0                          # some RVs widest at the base
    heart, _ = draw_heart(np.random.default_rng(3), 0, rv_variety=1.0)
    assert isinstance(heart, RedrawnRVHeart) and heart.rv_insertion_deg != (30.0, 150.0)
    assert heart.rv_edv > 0 and heart.rv_esv < heart.rv_edv


def test_es_share_puts_cuts_near_end_systole():
    from cmr_search.phantom.randomized.scene import cut_phase, draw_heart
    heart, _ = draw_heart(np.random.default_rng(5), 0)
    rng = np.random.default_rng(0)
    near = [abs(cut_phase(heart, rng, 1.0) - heart.es_fraction) < 0.15 for _ in range(100)]
    anywhere = [abs(cut_phase(heart, rng, 0.0) - heart.es_fraction) < 0.15 for _ in range(100)]
    assert np.mean(near) > 0.95 and np.mean(anywhere) < 0.6


def test_lv_variety_thickens_walls_and_redraws_ef():
    from cmr_search.phantom.cases import params
    from cmr_search.phantom.randomized.scene import RandomLV
    rng = np.random.default_rng(2)
    latent = params.sample_latent(rng, 0, "NORMAL")
    lvs = [RandomLV.draw(rng) for _ in range(100)]
    thick = [lv.apply(latent) for lv in lvs]
    assert max(max(t.wall_ed_mm) for t in thick) > 1.5 * max(latent.wall_ed_mm)
    assert all(max(t.wall_ed_mm) <= 35.0 for t in thick)
    efs = [t.lv_ef for t in thick]
    assert min(efs) < 25 and max(efs) > 75                        # failing and hyperdynamic hearts


def test_trab_variety_draws_a_dense_fringe_labelled_cavity():
    import dataclasses
    from cmr_search.phantom.cases.latent import TISSUE
    from cmr_search.phantom.randomized.scene import draw_heart
    plain = [sample_slices(4, h, 2, SMALL) for h in range(2)]
    again = [sample_slices(4, h, 2, dataclasses.replace(SMALL, trab_variety=0.0)) for h in range(2)]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(plain, again))      # 0 draws nothing extra
    sparse, _ = draw_heart(np.random.default_rng(7), 0)
    dense, _ = draw_heart(np.random.default_rng(7), 0, trab_variety=1.0)
    cover = [float((h._cav.lv_trab > 0).mean()) for h in (sparse, dense)]
    assert cover[1] > 1.5 * cover[0] and dense._cav.lv_trab.max() > 2.8      # denser and deeper than default
    assert TISSUE["papillary"] != TISSUE["lv_myo"]                          # its own code: labelled cavity


def test_blood_variety_gives_the_rv_its_own_brightness_and_leaves_old_seeds_alone():
    import dataclasses
    from cmr_search.phantom.cases.latent import TISSUE
    from cmr_search.phantom.randomized.appearance import BLOOD_FACTOR
    plain = sample_slices(4, 1, 2, SMALL)[0]
    again = sample_slices(4, 1, 2, dataclasses.replace(SMALL, blood_variety=0.0))[0]
    assert np.array_equal(plain, again)                                      # 0 draws nothing extra
    lv, rv = TISSUE["lv_blood"], TISSUE["rv_blood"]
    shared = [draw_contrast(np.random.default_rng(s), 0.0)[0] for s in range(100)]
    split = [draw_contrast(np.random.default_rng(s), 0.0, blood_p=1.0)[0] for s in range(100)]
    assert max(abs(m[rv] / m[lv] - 1) for m in shared) < 0.25               # one draw, jitter only
    ratios = np.array([m[rv] / m[lv] for m in split])
    assert ratios.min() < 0.75 and ratios.max() > 1.1                        # darker and brighter RVs
    assert ratios.min() > BLOOD_FACTOR[0] * 0.8
    images, labels = sample_slices(4, 1, 6, dataclasses.replace(SMALL, blood_variety=1.0))
    assert images.shape == labels.shape and set(np.unique(labels)) <= {0, 1, 2, 3}


def test_trab_cap_keeps_a_blood_core_in_the_cavity_and_leaves_old_seeds_alone():
    import dataclasses
    from cmr_search.phantom.cases.latent import TISSUE
    from cmr_search.phantom.randomized.scene import Warp, cut, draw_heart
    from cmr_search.phantom.randomness import study_rng
    plain = sample_slices(4, 1, 2, dataclasses.replace(SMALL, trab_variety=1.0))[0]
    again = sample_slices(4, 1, 2, dataclasses.replace(SMALL, trab_variety=1.0, trab_cap=0.0))[0]
    assert np.array_equal(plain, again)                                      # 0: no cap, same images
    muscle = {}
    for cap in (0.0, 0.35):
        cfg = dataclasses.replace(SMALL, trab_variety=1.0, es_share=1.0, lv_variety=1.0, trab_cap=cap)
        counts = np.zeros(2)
        for idx in range(4):
            rng = study_rng(44, idx, 41)
            heart, frame = draw_heart(rng, idx, 0.0, 1.0, 1.0, cap)
            warp = Warp(rng, frame.origin, cfg)
            for _ in range(4):
                c = cut(heart, frame, warp, rng, cfg).centre
                counts += [(c == TISSUE["papillary"]).sum(), (c == TISSUE["lv_blood"]).sum()]
        muscle[cap] = counts[0] / counts.sum()
    assert muscle[0.35] < 0.9 * muscle[0.0]          # less of the (cavity-labelled) cavity rendered as muscle


def test_min_blood_contrast_keeps_blood_and_wall_apart():
    from cmr_search.phantom.cases.latent import TISSUE
    blood, wall = TISSUE["lv_blood"], TISSUE["lv_myo"]
    free = [draw_contrast(np.random.default_rng(s), 1.0)[0] for s in range(300)]
    kept = [draw_contrast(np.random.default_rng(s), 1.0, min_contrast=0.2)[0] for s in range(300)]
    close = [np.mean([abs(m[blood] - m[wall]) < 0.1 for m in ms]) for ms in (free, kept)]
    assert close[0] > 0.1 and close[1] < 0.03        # random contrast: often none; kept apart (but the jitter)
    same = [draw_contrast(np.random.default_rng(s), 1.0, min_contrast=0.0)[0] for s in range(5)]
    assert all(np.array_equal(a, b) for a, b in zip(free, same))            # 0 draws nothing extra

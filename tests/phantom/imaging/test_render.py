"""Tests of the MR image synthesis (phantom.imaging: render + signal, slab, artifacts) on the real heart."""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from scipy import ndimage

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import TISSUE, LGEPatch
from cmr_search.phantom.heart.anatomy import Heart
from cmr_search.phantom.heart.geometry import HeartFrame, sax_plane
from cmr_search.phantom.imaging import artifacts as art
from cmr_search.phantom.imaging import render
from cmr_search.phantom.imaging import signal as sig
from cmr_search.phantom.imaging.series import SERIES_KINDS
from cmr_search.phantom.imaging.slab import SlabSampler
from cmr_search.phantom.profiles import get_profile

SEED = 11
PURE = 255                     # "mixed" marker in pure-tissue maps


def make_study(label=None, index=0, profile="tiny", latent_changes=None, **acq_changes):
    """(latent, acq, profile, heart, frame) of one synthetic study, optionally edited."""
    lat = params.sample_latent(np.random.default_rng([SEED, index, 1]), index, label)
    lat = dataclasses.replace(lat, **(latent_changes or {}))
    prof = get_profile(profile)
    acq = params.sample_acquisition(np.random.default_rng([SEED, index, 2]), prof, index, SEED,
                                    age=lat.age)
    acq = dataclasses.replace(acq, **acq_changes)
    frame = HeartFrame.from_angles((20.0, -10.0, 0.0), acq.azimuth_deg, acq.elevation_deg,
                                   acq.inplane_rot_deg)
    return lat, acq, prof, Heart(lat, frame), frame


def run(study, seed=0, nuisance=True):
    lat, acq, prof, heart, frame = study
    return render.render_study(lat, acq, prof, heart, frame, np.random.default_rng(seed),
                               nuisance=nuisance)


def by_kind(series, kind, recon="magnitude"):
    return next(s for s in series if s.kind == kind and s.recon == recon)


def pure_tissue(heart, plane, t):
    """(H, W) tissue code where the pixel and its 3x3 neighbours are one tissue through the
    slab, else PURE; and the (H, W) fibrosis fraction at the plane."""
    tis = np.stack([heart.sample(plane.pixel_points(1, o * plane.thickness), t)[0]
                    for o in (-0.45, 0.0, 0.45)]).astype(np.int16)        # (3, H, W)
    mid = tis[1]
    same = (tis == mid).all(0)
    flat = ndimage.maximum_filter(mid, 3) == ndimage.minimum_filter(mid, 3)
    lge = heart.sample(plane.pixel_points(1, 0.0), t)[1]
    return np.where(same & flat, mid, PURE), lge


def rr_fraction(series, lat, frame_index):
    return series.trigger_times[frame_index] / (60000.0 / lat.hr_bpm) % 1.0


# --- structure ------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_series_shapes_kinds_and_timing_tiny(index):
    study = make_study(index=index)
    lat, acq, prof, heart, frame = study
    series = run(study)
    kinds = [s.kind for s in series]
    assert set(kinds) <= set(SERIES_KINDS)
    cine = by_kind(series, "cine_sax")
    assert cine.images.shape == (acq.n_sax, acq.n_phases, acq.rows, acq.cols)
    for v in acq.cine_lax:
        assert by_kind(series, f"cine_{v.lower()}").images.shape == (1, acq.n_phases, acq.rows,
                                                                     acq.cols)
    lge = by_kind(series, "lge_sax")
    assert lge.images.shape == (acq.n_lge_sax, 1, acq.rows, acq.cols)
    assert lge.inversion_times == [acq.ti_ms] and 300 <= lge.trigger_times[0] <= 700
    for v in acq.lge_lax:
        assert by_kind(series, f"lge_{v.lower()}").images.shape[:2] == (1, 1)
    assert ("psir" in [s.recon for s in series]) == acq.psir
    for d in acq.distractors:
        assert d in kinds
    rr = 60000.0 / lat.hr_bpm
    steps = np.diff(cine.trigger_times)
    assert np.allclose(steps, rr / acq.n_phases) and 0 <= cine.trigger_times[0] <= 20
    for s in series:
        assert s.images.dtype == np.float32 and np.isfinite(s.images).all()
        assert len(s.planes) == s.images.shape[0] and len(s.trigger_times) == s.images.shape[1]
        assert s.signed == (s.recon == "psir")
        if not s.signed:
            assert s.images.min() >= 0
        if s.inversion_times is not None:
            assert len(s.inversion_times) == s.images.shape[1]


def test_distractors_and_bench_profile():
    study = make_study(index=5, profile="bench",
                       distractors=("localizer", "ti_scout", "t2", "flow"))
    acq = study[1]
    series = run(study)
    loc = by_kind(series, "localizer")
    assert loc.images.shape == (3, 1, 96, 96)
    normals = np.array([p.normal for p in loc.planes])
    assert np.allclose(np.abs(normals @ normals.T), np.eye(3), atol=1e-9)   # orthogonal planes
    scout = by_kind(series, "ti_scout")
    assert 15 <= scout.images.shape[1] <= 25 and scout.images.shape[0] == 1
    assert np.all(np.diff(scout.inversion_times) > 0)
    assert by_kind(series, "t2").images.shape[:2] == (3, 1)
    assert by_kind(series, "flow").images.shape[:2] == (1, acq.n_phases)


def test_determinism():
    study = make_study(index=4, artifacts=("banding", "mistrigger", "wrap", "motion_blur"))
    a, b, c = run(study, seed=3), run(study, seed=3), run(study, seed=4)
    assert [s.kind for s in a] == [s.kind for s in b]
    for x, y in zip(a, b):
        assert np.array_equal(x.images, y.images) and x.trigger_times == y.trigger_times
    assert not np.array_equal(a[0].images, c[0].images)


# --- slice planning -------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [0, 6])
def test_plan_sax_covers_base_to_apex(index):
    lat, acq, prof, heart, frame = make_study(index=index, artifacts=())
    z = render.plan_sax(heart, acq, np.random.default_rng(0))
    z_base, z_apex = heart.sax_extent()
    sp = max(acq.slice_thickness + acq.slice_gap, render.COVER_MM / acq.n_sax)
    assert len(z) == acq.n_sax and np.allclose(np.diff(z), sp)
    assert sp == render.stack_spacing(acq.n_sax, acq.slice_thickness + acq.slice_gap)
    assert np.isclose(z[0] + z[-1], z_base + z_apex)                  # centred on the LV
    if z_apex - z_base <= acq.n_sax * sp:                              # ... and covering it
        assert z[0] <= z_base + sp / 2 + 1e-6 and z[-1] >= z_apex - sp / 2 - 1e-6
    inc = dataclasses.replace(acq, artifacts=("incomplete_coverage",))
    dropped = [render.plan_sax(heart, inc, np.random.default_rng(s)) for s in range(8)]
    for d in dropped:
        assert d[0] >= z_base + sp - 1e-6 or d[-1] <= z_apex - sp + 1e-6
    assert len({d[0] > z[0] for d in dropped}) == 2          # both ends get dropped sometimes


# --- contrast -------------------------------------------------------------------------------------
def test_bssfp_table_ordering():
    lat = make_study("NORMAL")[0]
    for field, flip in ((1.5, 60.0), (3.0, 40.0)):
        t = sig.cine_table(sig.tissue_table(lat, field), flip)
        fat, blood, myo, lung = (t[TISSUE[n]] for n in ("fat", "lv_blood", "lv_myo", "lung"))
        assert fat >= blood > 2 * myo and myo > 3 * lung


@functools.lru_cache(maxsize=None)
def clean_normal():
    study = make_study("NORMAL", index=2)
    return study, run(study, nuisance=False)


def test_bssfp_image_contrast_ordering():
    study, series = clean_normal()
    lat, heart = study[0], study[3]
    med = {}
    for s in (by_kind(series, "cine_sax"), by_kind(series, "localizer")):
        for i, plane in enumerate(s.planes):
            tis, _ = pure_tissue(heart, plane, rr_fraction(s, lat, 0))
            for name in ("fat", "lv_blood", "lv_myo", "lung"):
                med.setdefault(name, []).extend(s.images[i, 0][tis == TISSUE[name]].tolist())
    m = {k: np.median(v) for k, v in med.items() if len(v) >= 5}
    assert set(m) == {"fat", "lv_blood", "lv_myo", "lung"}, {k: len(v) for k, v in med.items()}
    assert m["fat"] >= 0.95 * m["lv_blood"] and m["lv_blood"] > 2 * m["lv_myo"]
    assert m["lv_myo"] > m["lung"]


def test_cavity_smaller_at_end_systole():
    study, series = clean_normal()
    lat, heart = study[0], study[3]
    cine = by_kind(series, "cine_sax")
    mid = cine.images.shape[0] // 2
    t = np.array([rr_fraction(cine, lat, f) for f in range(cine.images.shape[1])])
    es = int(np.argmin(np.abs(t - heart.es_fraction)))
    tab = sig.cine_table(sig.tissue_table(lat, study[1].field_strength), study[1].flip_deg)
    thr = 0.5 * (tab[TISSUE["lv_blood"]] + tab[TISSUE["lv_myo"]])

    def cavity(img):
        lab, _ = ndimage.label(img > thr)
        h, w = img.shape
        return int((lab == lab[h // 2, w // 2]).sum()) if lab[h // 2, w // 2] else 0

    ed_area, es_area = cavity(cine.images[mid, 0]), cavity(cine.images[mid, es])
    assert ed_area > 20 and es_area < 0.85 * ed_area


SCAR = LGEPatch("transmural", (1, 2, 7, 8, 13, 14), (0.0, 1.0), 1.0)


def lge_medians(study, series, kind="lge_sax", recon="psir"):
    """Median LGE signal of pure scar, remote myocardium and LV blood over the stack."""
    lat, heart = study[0], study[3]
    s = by_kind(series, kind, recon)
    vals = {"scar": [], "remote": [], "blood": []}
    for i, plane in enumerate(s.planes):
        tis, lge = pure_tissue(heart, plane, rr_fraction(s, lat, 0))
        img, myo = s.images[i, 0], tis == TISSUE["lv_myo"]
        vals["scar"] += img[myo & (lge > 0.8)].tolist()
        vals["remote"] += img[myo & (lge == 0)].tolist()
        vals["blood"] += img[tis == TISSUE["lv_blood"]].tolist()
    return {k: float(np.median(v)) if v else np.nan for k, v in vals.items()}


def test_lge_scar_bright_remote_nulled_at_right_ti():
    lat0 = make_study("NORMAL", index=3)[0]
    ti = lat0.t1_myo_post * np.log(2)
    study = make_study("NORMAL", index=3, latent_changes={"lge": (SCAR,)}, ti_ms=ti, psir=True,
                       field_strength=1.5)
    m = lge_medians(study, run(study, nuisance=False))
    assert abs(m["remote"]) < 0.03                # near the null (PD units)
    assert m["scar"] > 0.3 and m["scar"] > m["blood"] > 0.05
    wrong = make_study("NORMAL", index=3, latent_changes={"lge": (SCAR,)}, ti_ms=ti + 110,
                       psir=True, field_strength=1.5, wrong_ti=True)
    assert abs(lge_medians(wrong, run(wrong, nuisance=False))["remote"]) > 0.1


def test_amyloid_blood_darker_relative_to_myocardium():
    ti = make_study("NORMAL", index=4)[0].t1_myo_post * np.log(2)   # the operator's null TI
    normal = make_study("NORMAL", index=4, field_strength=1.5, ti_ms=ti)
    amyloid = make_study("AMYLOID", index=4, field_strength=1.5, ti_ms=ti)
    assert amyloid[0].nulling_abnormal and not normal[0].nulling_abnormal

    def ratio(study):
        s = by_kind(run(study, nuisance=False), "lge_sax")
        blood, myo = [], []
        for i, plane in enumerate(s.planes):
            tis, _ = pure_tissue(study[3], plane, rr_fraction(s, study[0], 0))
            blood += s.images[i, 0][tis == TISSUE["lv_blood"]].tolist()
            myo += s.images[i, 0][tis == TISSUE["lv_myo"]].tolist()
        return np.median(blood) / (np.mean(myo) + 1e-3)

    r_amy, r_norm = ratio(amyloid), ratio(normal)
    assert r_amy < 1.0 < r_norm and r_amy < 0.5 * r_norm


def test_psir_is_signed_twin_of_magnitude():
    study = make_study(index=1, psir=True)
    series = run(study)
    mag, ps = by_kind(series, "lge_sax"), by_kind(series, "lge_sax", "psir")
    assert ps.signed and not mag.signed and ps.recon == "psir"
    assert ps.images.min() < 0 <= mag.images.min()
    assert np.all(np.abs(ps.images) <= mag.images * 1.0001 + 1e-3)
    assert all(np.allclose(a.center, b.center) for a, b in zip(ps.planes, mag.planes))


# --- noise ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("snr", [25.0, 70.0])
def test_cine_blood_pool_snr(snr):
    study = make_study("NORMAL", index=2, snr_cine=snr, bias_ratio=1.0, artifacts=(),
                       misregistration_mm=0.0)
    lat, heart = study[0], study[3]
    cine = by_kind(run(study, seed=1), "cine_sax")
    est = []
    for i, plane in enumerate(cine.planes):
        for f in (0, cine.images.shape[1] // 2):
            tis, _ = pure_tissue(heart, plane, rr_fraction(cine, lat, f))
            v = cine.images[i, f][tis == TISSUE["lv_blood"]]
            if v.size >= 30:
                est.append(v.mean() / v.std())
    assert len(est) >= 3 and abs(np.median(est) / snr - 1) < 0.2


def test_noise_and_kspace_primitives():
    rng = np.random.default_rng(0)
    x = np.full((4, 64, 64), 10.0, np.float32)
    z = art.acquire(x, 0.5, rng, acq_matrix=(48, 40))
    assert abs(np.std(z.real) / 0.5 - 1) < 0.1 and abs(np.mean(np.abs(z)) - 10) < 0.1
    keep, frac = art.kept_lines((64, 64), (48, 40))
    assert keep.sum(0).max() == 48 and keep.sum(1).max() == 40 and frac == 48 * 40 / 64 ** 2
    step = np.zeros((1, 64, 64), np.float32)
    step[:, :, 32:] = 1.0
    ring = art.acquire(step, 0.0, rng, acq_matrix=(64, 32)).real
    assert ring.max() > 1.03                      # Gibbs overshoot at the edge


def test_bias_field_ratio_over_heart():
    centre = np.array([20.0, -10.0, 0.0])
    field = art.draw_bias(np.random.default_rng(2), centre, 1.6)
    g = field(centre + art._ball(60.0))
    assert abs(g.max() / g.min() - 1.6) < 1e-3 and abs(g.mean() - 1) < 1e-3
    flat = art.draw_bias(np.random.default_rng(2), centre, 1.0)
    assert np.allclose(flat(centre + art._ball(60.0)), 1.0)


# --- sampling -------------------------------------------------------------------------------------
def cine_sampler_setup(index=2, label="NORMAL"):
    lat, acq, prof, heart, frame = make_study(label, index=index)
    z = render.plan_sax(heart, acq, np.random.default_rng(0))
    table = sig.cine_table(sig.tissue_table(lat, acq.field_strength), acq.flip_deg)
    planes = [sax_plane(frame, zi, acq.pixel_spacing, acq.rows, acq.cols, acq.slice_thickness)
              for zi in (z[0], z[len(z) // 2], z[-1])]
    return heart, frame, planes, (lambda tis, lge, zl, f: table[tis])


@pytest.mark.parametrize("label", ["NORMAL", "RV", "HCM"])
def test_masked_frames_match_full_sampling(label):
    """Re-sampling only the heart's neighbourhood gives the same frames as sampling everything."""
    heart, frame, planes, fn = cine_sampler_setup(7, label)
    times = np.linspace(0.0, 0.95, 10)
    for plane in planes:
        fast = SlabSampler(heart, frame, plane, 2, 2).render(times, fn)
        full = SlabSampler(heart, frame, plane, 2, 2, margin_mm=np.inf).render(times, fn)
        assert np.mean(np.abs(fast - full) > 1e-6) < 0.001


def test_adaptive_partial_volume_matches_full_oversampling():
    """Refining only boundary pixels matches averaging k² sub-samples in every pixel."""
    heart, frame, planes, fn = cine_sampler_setup()
    k = 3
    for plane in planes:
        smp = SlabSampler(heart, frame, plane, k, 2)
        fast = smp.render([0.1], fn)[0]
        pts = smp.centres[:, :, None, :] + smp.sub                         # (S, H·W, k², 3)
        full = smp.weights @ fn(heart.sample(pts, 0.1)[0], None, None, 0).mean(-1)
        full = full.reshape(fast.shape)
        scale = np.abs(full).max()
        assert np.mean(np.abs(fast - full) > 1e-3 * scale) < 0.01
        centre_only = (smp.weights @ fn(heart.sample(smp.centres, 0.1)[0], None, None, 0))
        assert np.mean(np.abs(fast - centre_only.reshape(fast.shape)) > 1e-3 * scale) > 0.01


# --- nuisance -------------------------------------------------------------------------------------
def test_noise_references_are_class_independent():
    refs = set()
    for label in ("NORMAL", "AMYLOID", "NICM", "HCM"):
        lat = make_study(label, index=8)[0]
        tab = sig.tissue_table(lat, 1.5)
        refs.add((sig.cine_reference(tab, 55.0), sig.lge_reference(tab),
                  sig.t2_reference(tab, 900.0)))
    assert len(refs) == 1


def test_misregistration_moves_anatomy_not_planes():
    still = make_study(index=9, misregistration_mm=0.0, artifacts=())
    moved = make_study(index=9, misregistration_mm=6.0, artifacts=())
    a = by_kind(run(still, nuisance=True), "cine_sax")
    b = by_kind(run(moved, nuisance=True), "cine_sax")
    assert all(np.allclose(p.center, q.center) and np.allclose(p.iop(), q.iop())
               for p, q in zip(a.planes, b.planes))
    corr = [np.corrcoef(a.images[i, 0].ravel(), b.images[i, 0].ravel())[0, 1]
            for i in range(a.images.shape[0])]
    assert min(corr) < 0.97


def test_artifact_primitives():
    rng = np.random.default_rng(3)
    lung = np.zeros((48, 48), bool)
    lung[:, :10] = True
    g = art.banding_gain(lung, 2.0, rng, 3.0)
    assert g.min() < 0.4 and np.allclose(g[:, -5:], 1.0, atol=1e-3)   # dark bands near lung only
    frames = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((6, 8, 8), np.float32)
    bad = art.mistrigger(frames, rng)
    assert (bad != frames).any() and bad.shape == frames.shape
    strip = np.ones((8, 2), np.float32)
    folded = art.fold(np.zeros((3, 8, 8), np.float32), strip, 2 * strip)
    assert folded[:, :, -2:].min() == 1 and folded[:, :, :2].min() == 2
    assert folded[:, :, 2:-2].max() == 0
    img = np.zeros((2, 16, 16), np.complex64)
    img[:, 6:10, 6:10] = 1.0
    z = art.motion_blur(img, (1.0, 0.0), rng)
    assert z.dtype == np.complex64 and np.isclose(z.real.sum(), img.real.sum(), rtol=1e-4)
    assert np.abs(z - img).max() > 0.05                                # blurred / ghosted
    plane = sax_plane(HeartFrame.from_angles((20, -10, 0), 45, 25), 40.0, 1.5, 40, 56, 8.0)
    field = art.draw_bias(rng, plane.center, 1.8)
    assert np.allclose(field.on_plane(plane), field(plane.pixel_points()), rtol=1e-5)

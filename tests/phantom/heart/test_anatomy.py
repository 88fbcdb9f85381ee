"""Tests of the analytic beating heart (phantom.heart: anatomy / motion / lge): geometry, motion, LGE."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import TISSUE, LGEPatch
from cmr_search.phantom.heart import anatomy, cavity, measure, motion
from cmr_search.phantom.heart.body import habitus
from cmr_search.phantom.heart.geometry import HeartFrame, Plane, lax_plane, sax_plane
from cmr_search.phantom.heart.measure import ray_profile

FRAME = HeartFrame.from_angles((20.0, -10.0, 0.0), 45.0, 25.0, 8.0)


def latent(label: str, seed: int = 0, **changes):
    lat = params.sample_latent(np.random.default_rng(seed), seed, label)
    return dataclasses.replace(lat, **changes) if changes else lat


def local_of(plane, heart):
    return heart.frame.to_local(plane.pixel_points())                # (H, W, 3)


def test_volume_solve_hits_targets():
    for label, seed in (("NORMAL", 1), ("NICM", 2), ("HCM", 3), ("AMYLOID", 4), ("ICM", 5)):
        lat = latent(label, seed)
        h = anatomy.Heart(lat, FRAME)
        edv = lat.lv_edvi * lat.bsa
        assert h.cavity_volume_ml(0.0) == pytest.approx(edv, rel=1e-3)
        assert h.cavity_volume_ml(h.es_fraction) == pytest.approx(edv * (1 - lat.lv_ef / 100),
                                                                  rel=5e-3)


def test_ejection_curve_shape():
    es = motion.es_fraction(70)
    assert 0.30 <= es <= 0.40 and motion.es_fraction(95) > motion.es_fraction(55)
    t = np.linspace(0, 1, 401)
    f = motion.ejection_curve(t, es)
    assert f[0] == 0 and motion.ejection_curve(es, es) == pytest.approx(1.0)
    assert f.min() >= 0 and f.max() <= 1
    assert motion.ejection_curve(0.6, es) == pytest.approx(0.2, abs=0.02)   # 80 % refilled
    assert np.max(np.abs(np.diff(f))) < 0.03                                  # smooth


def test_mid_sax_layout():
    h = anatomy.Heart(latent("NORMAL", 7), FRAME)
    z = 0.45 * h.lv_length_mm()
    plane = sax_plane(FRAME, z, 1.0, 301, 301, 8.0)
    tis, _ = h.sample(plane.pixel_points(), 0.0)
    c = 150
    assert tis[c, c] == TISSUE["lv_blood"]
    row = tis[c]                         # row_dir = e_lat: columns < c are septal, > c lateral
    lat_side, sept_side = row[c:], row[:c][::-1]
    first_myo = np.argmax(lat_side == TISSUE["lv_myo"])
    assert 15 < first_myo < 40
    assert TISSUE["rv_blood"] in sept_side[:80]
    assert TISSUE["rv_blood"] not in lat_side
    assert TISSUE["lung"] in lat_side[first_myo:]
    assert TISSUE["lv_blood"] not in row[:c - 40]


def test_sample_shapes_dtypes_deterministic():
    lat = latent("AMYLOID", 11)
    pts = sax_plane(FRAME, 40.0, 2.0, 40, 50, 8.0).pixel_points()      # (40, 50, 3)
    a = anatomy.Heart(lat, FRAME).sample(pts, 0.3)
    b = anatomy.Heart(lat, FRAME).sample(pts, 0.3)
    assert a[0].shape == (40, 50) and a[0].dtype == np.uint8 and a[1].dtype == np.float32
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        anatomy.Heart(lat, FRAME).sample(np.zeros((4, 2)), 0.0)


def test_es_smaller_and_walls_thicken_except_akinetic():
    con = list(latent("NORMAL", 3).contractility)
    con[6] = 0.0                                                      # mid anterior akinetic
    h = anatomy.Heart(latent("NORMAL", 3, contractility=tuple(con)), FRAME)
    z = 0.5 * h.lv_length_mm()
    grid = np.stack(np.meshgrid(np.arange(-60, 60.0), np.arange(-60, 60.0)), -1).reshape(-1, 2)
    cav = [np.sum(h.sample_stack(grid, [z], t)[0] == TISSUE["lv_blood"]) for t in (0, h.es_fraction)]
    assert cav[1] < 0.7 * cav[0]
    # material level: the same s at ES sits lower because the base descends
    z_es = h.latent.base_descent_mm + 0.5 * (h._length(1.0))
    ed = ray_profile(h, z, 0.0, TISSUE["lv_myo"])
    es = ray_profile(h, z_es, h.es_fraction, TISSUE["lv_myo"])
    ang = np.arange(len(ed)) * 360.0 / len(ed)
    lateral = (ang > 230) & (ang < 310)
    anterior = (ang < 8) | (ang > 352)
    assert np.median(es[lateral] - ed[lateral]) > 2.0                # normal segments thicken
    assert abs(np.median(es[anterior] - ed[anterior])) < 1.0         # akinetic: no thickening


def _scar_points(h, plane):
    tis, lg = h.sample(plane.pixel_points(), 0.0)
    loc = local_of(plane, h)
    return loc[(lg > 0.5) & (tis == TISSUE["lv_myo"])]


def test_point_scar_in_segment_7_shows_in_sax_and_2ch():
    lat = latent("NORMAL", 5, lge=(LGEPatch("transmural", (7,), (0.0, 1.0), 1.0),))
    h = anatomy.Heart(lat, FRAME)
    mid = 0.5 * (0.35 + 0.68) * h._len0                               # mid-level depth at ED
    sax = _scar_points(h, sax_plane(FRAME, mid, 1.0, 160, 160, 8.0))
    assert len(sax) > 50
    assert np.all(sax[:, 1] > 0)                                      # anterior
    phi = np.rad2deg(np.arctan2(-sax[:, 0], sax[:, 1]))
    assert np.all(np.abs(phi) < 40)
    two = _scar_points(h, lax_plane(FRAME, "2CH", 0.5 * h.lv_length_mm(), 1.0, 200, 200, 8.0))
    assert len(two) > 20
    assert np.all(two[:, 1] > 0)                                      # anterior wall, not inferior
    assert np.all((two[:, 2] > 0.3 * h._len0) & (two[:, 2] < 0.75 * h._len0))
    four = _scar_points(h, lax_plane(FRAME, "4CH", 0.5 * h.lv_length_mm(), 1.0, 200, 200, 8.0))
    assert len(four) == 0                                             # 4CH misses segment 7


def test_patchiness_breaks_band_and_is_seeded():
    band = LGEPatch("midwall", (2, 3, 8, 9), (0.4, 0.6), 0.9, 0.0)
    patchy = dataclasses.replace(band, patchiness=0.8)
    counts = []
    for p in (band, patchy):
        h = anatomy.Heart(latent("NICM", 9, lge=(p,)), FRAME)
        counts.append(np.sum(h._lge > 0.5))
    assert 0 < counts[1] < 0.8 * counts[0]
    a = anatomy.Heart(latent("NICM", 9, lge=(patchy,)), FRAME)._lge
    assert np.array_equal(a, anatomy.Heart(latent("NICM", 9, lge=(patchy,)), FRAME)._lge)


def test_structures_present():
    lat = latent("AMYLOID", 21, pericardial_effusion_mm=8.0, thrombus=True,
                 pleural_effusion_mm=(15.0, 10.0))
    h = anatomy.Heart(lat, FRAME)
    seen = set()
    for view in ("2CH", "3CH", "4CH"):
        plane = lax_plane(FRAME, view, 0.5 * h.lv_length_mm(), 1.5, 240, 240, 8.0)
        seen |= set(np.unique(h.sample(plane.pixel_points(), h.es_fraction)[0]).tolist())
    for name in ("lv_blood", "lv_myo", "rv_blood", "la_blood", "ra_blood", "aorta_blood",
                 "atrial_wall", "pericardial_fluid", "thrombus", "lung", "fat", "muscle"):
        assert TISSUE[name] in seen, name
    body = Plane(FRAME.origin + np.array([0.0, 0.0, -20.0]), np.array([1.0, 0, 0]),
                 np.array([0, 1.0, 0]), 1.5, 256, 256, 8.0)          # axial, 384 mm FOV
    codes = set(np.unique(h.sample(body.pixel_points(), 0.0)[0]).tolist())
    assert {TISSUE["air"], TISSUE["pleural_fluid"], TISSUE["bone"]} <= codes


def test_speed():
    h = anatomy.Heart(latent("HCM", 4), FRAME)
    t0 = time.process_time()
    anatomy.Heart(latent("HCM", 4), FRAME)
    assert time.process_time() - t0 < 0.2                              # target ~10 ms
    pts = sax_plane(FRAME, 40.0, 350 / 256, 256, 256, 8.0).pixel_points(2)   # 262k points
    h.sample(pts, 0.1)
    t0 = time.process_time()
    for _ in range(3):
        h.sample(pts, 0.1)
    rate = 3 * pts[..., 0].size / (time.process_time() - t0)
    assert rate > 3e6                       # loose bound for a loaded CI box (target >= 15e6)


# --- realism: intracavitary structures, body -----------------------------------------------------
def test_papillary_trabeculae_and_moderator_band_present():
    h = anatomy.Heart(latent("NORMAL", 7), FRAME)
    seen = set()
    for f in (0.35, 0.5, 0.62, 0.75):
        plane = sax_plane(FRAME, f * h.lv_length_mm(), 0.5, 301, 301, 8.0)
        seen |= set(np.unique(h.sample(plane.pixel_points(), 0.0)[0]).tolist())
    assert {TISSUE["papillary"], TISSUE["rv_trabecula"], TISSUE["pericardium"]} <= seen
    z = 0.5 * h.lv_length_mm()
    grid = np.stack(np.meshgrid(np.arange(-60, 60, 0.5), np.arange(-60, 60, 0.5)), -1).reshape(-1, 2)
    codes, _ = h.sample_stack(grid.astype(np.float32), [z], 0.0)
    pap = grid[codes[0] == TISSUE["papillary"]]
    ang = np.rad2deg(np.arctan2(-pap[:, 0], pap[:, 1])) % 360     # segments.py angle
    assert np.any(np.abs(ang - 305) < 25) and np.any(np.abs(ang - 172) < 25)   # both muscles


def test_cavity_structures_do_not_change_measurements(monkeypatch):
    lat = latent("HCM", 3)
    zs = list(np.linspace(-6.0, 90.0, 10))
    with_s = measure.measure_study(anatomy.Heart(lat, FRAME), zs)
    monkeypatch.setattr(cavity, "lv_muscle", lambda *a, **k: np.zeros(len(a[6]), bool))
    monkeypatch.setattr(cavity, "rv_muscle", lambda *a, **k: np.zeros(len(a[3]), bool))
    monkeypatch.setattr(anatomy, "PERI_MM", 0.0)
    without = measure.measure_study(anatomy.Heart(lat, FRAME), zs)
    assert with_s == pytest.approx(without, rel=1e-9)


def test_body_habitus_class_independent_and_chest_wall_near_heart():
    a, b = latent("NORMAL", 5), latent("HCM", 5)
    b = dataclasses.replace(b, study_index=a.study_index, height_cm=a.height_cm,
                            weight_kg=a.weight_kg)
    assert habitus(a.study_index, a.height_cm, a.weight_kg) == \
        habitus(b.study_index, b.height_cm, b.weight_kg)
    h = anatomy.Heart(a, FRAME)
    hw, hd, fat, mus = habitus(a.study_index, a.height_cm, a.weight_kg)
    assert 135 <= hw <= 195 and 95 <= hd <= 140 and 6 <= fat <= 32
    # walking anteriorly (-y) from the RV free wall reaches the chest wall muscle within ~40 mm
    hull, contact = h._hull_lps()
    p = contact[np.argmin(contact[:, 1])]
    ray = p[None, :] - np.arange(0, 60, 1.0)[:, None] * np.array([0.0, 1.0, 0.0])
    tis, _ = h.sample(ray, 0.0)
    assert TISSUE["muscle"] in tis[:40] or TISSUE["cortex"] in tis[:40]
    axial = Plane(FRAME.origin + np.array([0.0, 0.0, -40.0]), np.array([1.0, 0, 0]),
                  np.array([0, 1.0, 0]), 1.5, 256, 256, 8.0)
    codes = set(np.unique(h.sample(axial.pixel_points(), 0.0)[0]).tolist())
    assert {TISSUE["csf"], TISSUE["aorta_blood"], TISSUE["bone"], TISSUE["lung"]} <= codes
    low = axial.shifted([0.0, 0.0, h._body.z_heart_bottom + 40.0 - 25.0])   # under the heart
    codes = set(np.unique(h.sample(low.pixel_points(), 0.0)[0]).tolist())
    assert {TISSUE["liver"], TISSUE["gastric"]} <= codes

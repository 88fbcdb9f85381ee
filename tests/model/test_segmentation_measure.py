"""measure_cine on geometric masks with known answers: concentric discs and rings, ED/ES picking, flags."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cmr_search.model.segmentation.measure import (MEASURE_KEYS, bsa_mosteller, measure_cine,
                                                   slice_wall_thickness)

PX = 1.0          # mm per pixel
SLICE = 10.0      # mm between slice centres
N = 160


def _disc(r_mm: float, centre=(64.0, 56.0)) -> np.ndarray:
    yy, xx = np.mgrid[:N, :N]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= (r_mm / PX) ** 2


def _slice(r_cav: float, wall: float, r_rv: float = 0.0) -> np.ndarray:
    """LV cavity disc of radius r_cav, myocardial ring of thickness `wall` around it, an RV disc beside."""
    m = np.zeros((N, N), np.uint8)
    if r_rv:
        m[_disc(r_rv, (64.0, 56.0 + r_cav + wall + r_rv + 2))] = 1
    if r_cav + wall > 0:
        m[_disc(r_cav + wall)] = 2
    if r_cav > 0:
        m[_disc(r_cav)] = 3
    return m


def _cine(radii_per_phase, wall=8.0, rv=(), slices=8, taper=True, base=True) -> np.ndarray:
    """(S, T, H, W): per phase an LV of that cavity radius on every slice; with `base` the first slice is
    above the LV (RV only), with `taper` the two last narrow to the apex."""
    out = np.zeros((slices, len(radii_per_phase), N, N), np.uint8)
    scale = [1.0] * (slices - 2) + [0.6, 0.0] if taper else [1.0] * slices
    for t, r in enumerate(radii_per_phase):
        for s in range(slices):
            lv = 0.0 if base and s == 0 else scale[s]
            out[s, t] = _slice(r * lv, wall if lv else 0.0, rv[t] * max(scale[s], 0.5) if rv else 0.0)
    return out


def test_volumes_ef_and_mass_from_discs():
    masks = _cine([25.0, 15.0], wall=8.0, rv=(20.0, 14.0), slices=6, taper=False, base=False)
    m = measure_cine(masks, (PX, PX), SLICE, ed_es=(0, 1))
    area = lambda lab, t: (masks[:, t] == lab).sum() * PX * PX        # noqa: E731
    assert m["lvedv"] == pytest.approx(area(3, 0) * SLICE / 1000)
    assert m["lvedv"] == pytest.approx(6 * math.pi * 25 ** 2 * SLICE / 1000, rel=0.02)
    assert m["lvesv"] == pytest.approx(6 * math.pi * 15 ** 2 * SLICE / 1000, rel=0.02)
    assert m["lvef"] == pytest.approx((1 - 15 ** 2 / 25 ** 2) * 100, abs=1.0)
    assert m["lv_mass"] == pytest.approx(area(2, 0) * SLICE / 1000 * 1.05)
    assert m["rvef"] == pytest.approx((1 - area(1, 1) / area(1, 0)) * 100)
    assert (m["ed_phase"], m["es_phase"]) == (0, 1)
    assert set(MEASURE_KEYS) <= set(m)


def test_wall_thickness_of_a_ring_and_robust_to_a_stray_pixel():
    for wall in (6.0, 10.0, 15.0):
        s = _slice(22.0, wall)
        t = slice_wall_thickness(s == 2, s == 3, (PX, PX))
        assert t == pytest.approx(wall, abs=1.2)
    s = _slice(22.0, 8.0)
    s[64, 56 + 22 + 8: 56 + 22 + 8 + 12] = 2          # a 12-pixel spur off one side
    assert slice_wall_thickness(s == 2, s == 3, (PX, PX)) == pytest.approx(8.0, abs=1.5)


def test_wall_thickness_scales_with_pixel_spacing():
    s = _slice(20.0, 10.0)
    assert slice_wall_thickness(s == 2, s == 3, (1.5, 1.5)) == pytest.approx(15.0, abs=2.0)


def test_max_wall_in_a_cine_is_the_ed_wall():
    masks = _cine([24, 22, 18, 14, 13, 15, 19, 23], wall=9.0, rv=[18] * 8)
    m = measure_cine(masks, (PX, PX), SLICE)
    assert m["max_wall"] == pytest.approx(9.0, abs=1.2)


def test_ed_es_picked_from_the_lv_curve_of_a_full_cine():
    radii = [20, 22, 24, 21, 16, 12, 14, 18, 19]          # max at 2, min at 5
    m = measure_cine(_cine(radii, rv=[r * 0.8 for r in radii]), (PX, PX), SLICE)
    assert (m["ed_phase"], m["es_phase"]) == (2, 5)
    assert "not a full cine: ED/ES assumed" not in m["seg_flags"]
    assert m["seg_quality"] == "good", m["seg_flags"]


def test_few_phases_without_ed_es_are_flagged():
    m = measure_cine(_cine([15, 24], rv=[14, 18]), (PX, PX), SLICE)
    assert (m["ed_phase"], m["es_phase"]) == (1, 0)
    assert "not a full cine: ED/ES assumed" in m["seg_flags"] and m["seg_quality"] == "check"


def test_single_phase_has_no_ef():
    m = measure_cine(_cine([24], rv=[18]), (PX, PX), SLICE)
    assert m["lvedv"] > 0 and m["lvesv"] is None and m["lvef"] is None


def test_missing_base_is_flagged():
    m = measure_cine(_cine([24, 15], rv=[18, 12], base=False), (PX, PX), SLICE, ed_es=(0, 1))
    assert "base not covered" in m["seg_flags"] and m["seg_quality"] == "check"
    m = measure_cine(_cine([24, 15], rv=[18, 12]), (PX, PX), SLICE, ed_es=(0, 1))
    assert m["seg_flags"] == [] and m["seg_quality"] == "good"


def test_missing_apex_and_gaps_are_flagged():
    masks = _cine([24, 15], rv=[18, 12], taper=False)
    flags = measure_cine(masks, (PX, PX), SLICE, ed_es=(0, 1))["seg_flags"]
    assert "apex not covered" in flags
    masks = _cine([24, 15], rv=[18, 12])
    masks[3] = 0
    flags = measure_cine(masks, (PX, PX), SLICE, ed_es=(0, 1))["seg_flags"]
    assert any(f.startswith("slices dropped") and "[3]" in f for f in flags)


def test_broken_rings_are_flagged():
    masks = _cine([24, 15], rv=[18, 12])
    for s in range(1, 7):                                  # cut the ring open on six slices
        sl = masks[s, 0]
        sl[60:69, 56:][sl[60:69, 56:] == 2] = 0
    m = measure_cine(masks, (PX, PX), SLICE, ed_es=(0, 1))
    assert any(f.startswith("implausible: myocardium ring broken on 6") for f in m["seg_flags"])
    assert m["seg_quality"] == "check"


def test_implausible_ef_and_no_lv_are_poor():
    m = measure_cine(_cine([24, 24], rv=[18, 12]), (PX, PX), SLICE, ed_es=(0, 1))
    assert m["lvef"] == pytest.approx(0.0) and m["seg_quality"] == "poor"
    assert any(f.startswith("implausible: LVEF") for f in m["seg_flags"])
    empty = measure_cine(np.zeros((6, 10, 32, 32), np.uint8), (PX, PX), SLICE)
    assert empty["seg_quality"] == "poor" and empty["seg_flags"][0] == "no LV found"
    assert all(empty[k] is None for k in ("lvedv", "lvef", "lv_mass", "max_wall", "rvef"))


def test_rv_missing_is_flagged_and_none():
    m = measure_cine(_cine([24, 15]), (PX, PX), SLICE, ed_es=(0, 1))
    assert m["rvedv"] is None and m["rvef"] is None and "RV not found" in m["seg_flags"]
    assert m["lvef"] is not None


def test_implausible_rvef_withholds_the_rv_numbers():
    m = measure_cine(_cine([24, 15], rv=[6, 18]), (PX, PX), SLICE, ed_es=(0, 1))     # RV grows into systole
    assert m["rvedv"] is None and m["rvesv"] is None and m["rvef"] is None and m["rvedvi"] is None
    assert any(f.startswith("implausible: RVEF") and "withheld" in f for f in m["seg_flags"])
    assert m["lvef"] is not None and m["seg_quality"] == "check"


def test_bsa_indexing():
    assert bsa_mosteller(180, 80) == pytest.approx(2.0)
    assert bsa_mosteller(None, 80) is None and bsa_mosteller(170, 0) is None
    masks = _cine([24, 15], rv=[18, 12])
    m = measure_cine(masks, (PX, PX), SLICE, ed_es=(0, 1), height_cm=180, weight_kg=80)
    assert m["bsa"] == pytest.approx(2.0)
    for k in ("lvedv", "lvesv", "lv_mass", "rvedv", "rvesv"):
        idx = "lv_massi" if k == "lv_mass" else k + "i"
        assert m[idx] == pytest.approx(m[k] / 2.0)
    plain = measure_cine(masks, (PX, PX), SLICE, ed_es=(0, 1))
    assert plain["bsa"] is None and plain["lvedvi"] is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="slices, phases"):
        measure_cine(np.zeros((4, 32, 32), np.uint8), (1, 1), 10)
    with pytest.raises(ValueError, match="ed_es"):
        measure_cine(_cine([24, 15]), (1, 1), 10, ed_es=(0, 5))

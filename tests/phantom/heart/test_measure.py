"""Tests of the reader-like re-measurement (phantom.heart.measure) against the latent targets (§7.3)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import MEASURED_FIELDS, TISSUE, TERRITORY_SEGMENTS
from cmr_search.phantom.heart import anatomy, measure
from cmr_search.phantom.heart.geometry import HeartFrame
from cmr_search.phantom.heart.segments import segment_centre_deg

FRAME = HeartFrame.from_angles((20.0, -10.0, 0.0), 50.0, 30.0, -10.0)
MIX = ("NORMAL", "NICM", "ICM", "HCM", "AMYLOID", "RV")


def stack(heart, spacing: float = 10.0) -> list[float]:
    """Cine SAX depths as a protocol would place them: from above the base through the apex."""
    z0, z1 = heart.sax_extent()
    return list(np.arange(z0 + 0.5 * spacing - 2.0, z1, spacing))


def study(label: str, seed: int, **changes):
    lat = params.sample_latent(np.random.default_rng(seed), seed, label)
    lat = dataclasses.replace(lat, **changes) if changes else lat
    h = anatomy.Heart(lat, FRAME)
    return lat, h, measure.measure_study(h, stack(h))


@pytest.fixture(scope="module")
def mixed():
    return [study(MIX[i % len(MIX)], 100 + i) for i in range(30)]


def test_keys_and_types(mixed):
    for _, _, m in mixed:
        assert tuple(m) == MEASURED_FIELDS
        assert all(isinstance(v, float) and np.isfinite(v) for v in m.values())


def test_ef_and_edvi_track_targets(mixed):
    for lat, _, m in mixed:
        assert abs(m["lv_ef"] - lat.lv_ef) <= 3.0, (lat.label, lat.lv_ef, m["lv_ef"])
        assert m["lv_edvi"] == pytest.approx(lat.lv_edvi, rel=0.05)
        assert abs(m["rv_ef"] - lat.rv_ef) <= 5.0           # RV: larger basal partial volume
        assert m["rv_edvi"] == pytest.approx(lat.rv_edvi, rel=0.07)
        assert m["lv_esv_ml"] < m["lv_edv_ml"]


def test_class_phenotypes(mixed):
    by = {}
    for lat, _, m in mixed:
        by.setdefault(lat.label, []).append((lat, m))
    for lat, m in by["HCM"]:
        if lat.subtype == "classic":
            assert m["septal_lateral_ratio"] >= 1.3 and m["max_wall_mm"] >= 13
    for lat, m in by["AMYLOID"]:
        assert 0.8 <= m["septal_lateral_ratio"] <= 1.25 and m["max_wall_mm"] >= 10.5
        assert m["lv_massi"] > 75
    for lat, m in by["RV"]:
        assert m["rv_edvi"] > 100 or m["rv_ef"] < 45
    normal = [m for lat, m in by["NORMAL"]]
    assert all(m["max_wall_mm"] < 12.5 and m["lge_percent"] < 3 for m in normal)
    scarred = [m for lat, m in by["ICM"] if any(p.strength >= 0.7 for p in lat.lge)]
    assert all(m["lge_percent"] > 1 for m in scarred)        # (some ICM latents carry no scar)


def test_dense_icm_scar_is_measured_as_lge():
    for seed in range(300, 400):
        lat = params.sample_latent(np.random.default_rng(seed), seed, "ICM")
        if any(p.strength >= 0.9 and p.pattern == "transmural" for p in lat.lge):
            break
    else:
        pytest.fail("no ICM latent with a dense transmural scar in 100 seeds")
    h = anatomy.Heart(lat, FRAME)
    assert measure.measure_study(h, stack(h))["lge_percent"] > 3


def test_icm_infarct_territory_is_thinned():
    for seed in range(200, 300):
        lat = params.sample_latent(np.random.default_rng(seed), seed, "ICM")
        segs = [s for s in TERRITORY_SEGMENTS.get((lat.territories or ("-",))[0], ())
                if 7 <= s <= 12 and lat.wall_ed_mm[s - 1] < 6.0]
        remote = [lat.wall_ed_mm[s - 1] for s in range(7, 13) if s not in segs]
        if len(lat.territories) == 1 and segs and remote and \
                np.median(remote) - max(lat.wall_ed_mm[s - 1] for s in segs) >= 2.5:
            break
    else:
        pytest.fail("no ICM latent with a thinned mid-ventricular territory in 100 seeds")
    h = anatomy.Heart(lat, FRAME)
    prof = measure.ray_profile(h, 0.5 * h.lv_length_mm(), 0.0, TISSUE["lv_myo"])
    ang = np.arange(len(prof)) * 360.0 / len(prof)
    def near(seg_list):          # rays within 15° of the given segments' centres
        sel = np.zeros(len(prof), bool)
        for s in seg_list:
            sel |= np.abs((ang - segment_centre_deg(s) + 180) % 360 - 180) < 15
        return sel
    thick = [s for s in range(7, 13) if lat.wall_ed_mm[s - 1] >= 7.5]
    assert np.median(prof[near(segs)]) < np.median(prof[near(thick)]) - 1.5


def test_effusion_la_and_lge_measured():
    lat, h, m = study("AMYLOID", 7, pericardial_effusion_mm=9.0, la_scale=1.0)
    # the reader takes the deepest point; the layer is deeper posteriorly (up to ~1.6x, anatomy.py)
    assert 7.5 <= m["pericardial_effusion_mm"] <= 1.7 * 9.0
    _, _, small = study("AMYLOID", 7, pericardial_effusion_mm=4.0, la_scale=1.0)
    assert small["pericardial_effusion_mm"] < m["pericardial_effusion_mm"]
    _, _, big = study("AMYLOID", 7, pericardial_effusion_mm=9.0, la_scale=1.6)
    assert big["la_area_cm2"] > 1.3 * m["la_area_cm2"] > 1.3 * 10
    _, _, none = study("NORMAL", 3)
    assert none["pericardial_effusion_mm"] == 0.0 and none["lge_percent"] == 0.0


def test_measure_is_deterministic():
    lat, h, m = study("ICM", 42)
    again = measure.measure_study(h, stack(h))                # speed: bench, not tests
    assert again == m
    with pytest.raises(ValueError):
        measure.measure_study(h, [])

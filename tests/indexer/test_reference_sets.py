"""Readers of the real reference sets (ACDC dev, Sunnybrook cine) and the Sunnybrook contour alignment:
the contours sit on the edges of the image of their own InstanceNumber, at the 1-based pixel origin.
Skipped when ../shared is absent (the polygon fill is tested without it)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from cmr_search.indexer.reference_sets import (ACDC_GROUPS, CONTOUR_ORIGIN, acdc_patients, fill_polygon,
                                               read_acdc_patient, read_contour, read_sunnybrook, sunnybrook_studies)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ACDC, SUNNY = SHARED / "acdc-dev", SHARED / "sunnybrook-cine"
needs_acdc = pytest.mark.skipif(not ACDC.is_dir(), reason="../shared/data/acdc-dev absent")
needs_sunny = pytest.mark.skipif(not SUNNY.is_dir(), reason="../shared/data/sunnybrook-cine absent")


def test_fill_polygon_pixel_centres():
    square = np.array([[1.5, 2.5], [6.5, 2.5], [6.5, 5.5], [1.5, 5.5]])      # x 1.5..6.5, y 2.5..5.5
    m = fill_polygon(square, (10, 10))
    expect = np.zeros((10, 10), bool)
    expect[3:6, 2:7] = True                                                   # rows 3-5, columns 2-6
    assert np.array_equal(m, expect)
    shifted = fill_polygon(square, (10, 10), offset=CONTOUR_ORIGIN)          # 1-based: one row and column up
    assert np.array_equal(shifted, np.roll(expect, (-1, -1), axis=(0, 1)))


@needs_acdc
def test_acdc_patients_read_with_masks():
    folders = acdc_patients(ACDC)
    assert len(folders) == 20
    case = read_acdc_patient(folders[0])
    s, t, h, w = case.images.shape
    assert t == 2 and case.masks.shape == case.images.shape and case.ed_es == (0, 1)
    assert set(np.unique(case.masks)) <= {0, 1, 2, 3} and case.group in ACDC_GROUPS
    assert case.spacing == (1.5, 1.5) and case.slice_mm == 10.0
    lv = (case.masks == 3).sum(axis=(0, 2, 3))
    assert lv[0] > lv[1]                                                      # ED cavity larger than ES


def _edge_score(image, pts, offset) -> float:
    g = ndimage.gaussian_gradient_magnitude(image.astype(float), 1.0)
    g /= np.percentile(g, 99)
    return float(ndimage.map_coordinates(g, [pts[:, 1] - offset[1], pts[:, 0] - offset[0]], order=1).mean())


@pytest.fixture(scope="module")
def sunny_cases():
    return [read_sunnybrook(f, SUNNY) for f in sunnybrook_studies(SUNNY)]


@needs_sunny
def test_sunnybrook_every_contour_file_is_placed(sunny_cases):
    assert [c.name for c in sunny_cases] == [f"SCD0000{i}01" for i in range(1, 6)]
    assert sum(len(c.contours) for c in sunny_cases) == 96                   # every i-contour file
    assert sum(c["myocardium"] is not None for c in sunny_cases for c in c.contours) == 46
    for case in sunny_cases:
        s, t, h, w = case.images.shape
        assert t == 20 and 10 <= s <= 13 and case.slice_mm in (pytest.approx(8.0, abs=0.01), pytest.approx(10.0, abs=0.01))
        assert len({c["phase"] for c in case.contours}) == 2                  # one ED and one ES phase


@needs_sunny
def test_sunnybrook_cavity_brighter_than_its_myocardium(sunny_cases):
    brighter, total = 0, 0
    for case in sunny_cases:
        for c in case.contours:
            if c["myocardium"] is not None:
                img = case.images[c["slice"], c["phase"]]
                brighter += img[c["cavity"]].mean() > img[c["myocardium"]].mean()
                total += 1
    assert brighter == total == 46


@needs_sunny
def test_sunnybrook_contours_fit_their_own_image_at_the_1_based_origin(sunny_cases):
    own, above, below, zero = [], [], [], []
    for case in sunny_cases:
        for c in case.contours:
            pts = read_contour(c["files"]["i"])
            s, t = c["slice"], c["phase"]
            own.append(_edge_score(case.images[s, t], pts, CONTOUR_ORIGIN))
            zero.append(_edge_score(case.images[s, t], pts, (0.0, 0.0)))
            if s > 0:
                above.append(own[-1] - _edge_score(case.images[s - 1, t], pts, CONTOUR_ORIGIN))
            if s + 1 < case.images.shape[0]:
                below.append(own[-1] - _edge_score(case.images[s + 1, t], pts, CONTOUR_ORIGIN))
    assert np.mean(own) > np.mean(zero) * 1.03                                # origin (1, 1) beats (0, 0)
    assert np.mean(above) > 0 and np.mean(below) > 0                          # own slice beats neighbours

"""Measurements in `cmr prepare` / `cmr index`: the columns and display masks a measured cache holds, the
payload, and the resumable path (a cache or an index built without measurements gains them on a re-run,
nothing rebuilt or re-embedded). The segmenter is untrained (values meaningless): plumbing, not accuracy."""
from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from cmr_search.indexer.assemble import read_cine_sax
from cmr_search.indexer.cache import load_masks
from cmr_search.indexer.measurements import (MEASURE_COLUMNS, MeasurementsSkipped, blood_curve, body_size,
                                             display_masks, load_segmenter)
from cmr_search.indexer.payload import measurement_payload, payload_row
from cmr_search.indexer.prepare import prepare
from cmr_search.indexer.scan import scan_archive
from cmr_search.indexer.series_typing import type_study
from cmr_search.model.preprocess import CACHE_SIZE
from cmr_search.model.segmentation import Segmenter
from cmr_search.search.collection import MEASUREMENTS
from tests.helpers.dicom_fixtures import write_study

N_PHASES = 10


@pytest.fixture(scope="module")
def arch(tmp_path_factory):
    root = tmp_path_factory.mktemp("measure")
    for i in range(3):
        write_study(root / "arch", f"s{i}", n_slices=6, n_phases=N_PHASES, heart_slices=(1, 4))
    return root


@pytest.fixture(scope="module")
def seg():
    return Segmenter.untrained("seg-unet-tiny", seed=0)


def _prepare(arch, out, segmenter, workers=1):
    return prepare(arch / "arch", None, out, salt_file=arch / "salt", progress=False, segmenter=segmenter,
                   workers=workers)


def test_prepare_writes_measurements_and_masks(arch, seg, tmp_path):
    r = _prepare(arch, tmp_path / "c", seg, workers=2)
    t = r.studies
    assert r.n_measured == 3 and set(MEASURE_COLUMNS) <= set(t.columns)
    assert t["seg_fingerprint"].to_list() == [seg.fingerprint] * 3
    assert set(t["seg_quality"].to_list()) <= {"good", "check", "poor"}
    assert all(isinstance(f, list) for f in t["seg_flags"].to_list())
    for row in t.iter_rows(named=True):
        masks, frames = load_masks(tmp_path / "c", row["mask_path"])
        assert masks.shape == (2, CACHE_SIZE, CACHE_SIZE) and masks.dtype == np.uint8 and masks.max() <= 3
        assert all(0 <= f < 20 for f in frames)
        assert 0 <= row["ed_phase"] < N_PHASES and 0 <= row["es_phase"] < N_PHASES


def test_no_checkpoint_says_once_and_prepares(arch, tmp_path, monkeypatch):
    import cmr_search.model.segmentation.segmenter as segmenter_module
    monkeypatch.delenv("CMR_SEG_CHECKPOINT", raising=False)
    monkeypatch.setattr(segmenter_module, "SHIPPED", tmp_path / "no-such-checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = _prepare(arch, tmp_path / "c", None)
    said = [w for w in caught if issubclass(w.category, MeasurementsSkipped)]
    assert len(said) == 1 and "cmr prepare" in str(said[0].message)
    assert r.studies.height == 3 and r.n_measured == 0 and "lvef" not in r.studies.columns


def test_existing_cache_gains_measurements_without_rebuilding_arrays(arch, seg, tmp_path):
    out = tmp_path / "c"
    first = _prepare(arch, out, False)
    assert first.n_assembled == 3 and "seg_fingerprint" not in first.studies.columns
    arrays = {p.name: p.stat().st_mtime_ns for p in (out / "arrays").iterdir()}
    before = first.studies.drop("qa")
    again = _prepare(arch, out, seg)
    assert (again.n_assembled, again.n_skipped, again.n_measured) == (0, 3, 3)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "arrays").iterdir()} == arrays   # not rebuilt
    after = again.studies
    assert after.select(before.columns).sort("study_key").equals(before.sort("study_key"))  # nothing lost
    assert after["seg_fingerprint"].to_list() == [seg.fingerprint] * 3
    assert _prepare(arch, out, seg).n_measured == 0                                       # up to date
    other = Segmenter.untrained("seg-unet-tiny", seed=1)
    assert _prepare(arch, out, other).n_measured == 3                                     # new weights


def test_existing_index_gains_measurements_without_reembedding(arch, seg, tmp_path):
    from cmr_search.indexer.index import index_archive
    from cmr_search.indexer.model_source import fresh_model
    from cmr_search.search import Filter, Store
    model = fresh_model()
    data = tmp_path / "data"
    kw = dict(model=model, salt_file=arch / "salt", progress=False)
    r1 = index_archive(arch / "arch", None, data, segmenter=False, **kw)
    assert r1.n_indexed == 3
    with Store.open(data=data) as s:
        before = {h.key: (h.vectors["study"], h.payload["indexed_at"]) for h in s.scroll(vectors=["study"])}
        assert all(h.payload.get("seg_fingerprint") is None for h in s.scroll())
    r2 = index_archive(arch / "arch", None, data, segmenter=seg, **kw)
    assert (r2.n_indexed, r2.n_skipped, r2.n_measured, r2.n_points) == (0, 3, 3, 3)
    with Store.open(data=data) as s:
        hits = list(s.scroll(vectors=["study"]))
        cached = {r["study_key"]: r for r in pl.read_parquet(data / "cache" / "studies.parquet").iter_rows(named=True)}
        for h in hits:                  # (the embedded engine drops a null set by a payload update: absent)
            assert h.payload["seg_fingerprint"] == seg.fingerprint and "seg_quality" in h.payload
            assert all(h.payload.get(m) == cached[h.key][m] for m in MEASUREMENTS)
            assert (h.vectors["study"], h.payload["indexed_at"]) == before[h.key]       # not re-embedded
        with_lvef = [h.key for h in hits if h.payload.get("lvef") is not None]
        assert s.count(Filter(lvef=(None, None))) == len(with_lvef)
    assert index_archive(arch / "arch", None, data, segmenter=seg, **kw).n_measured == 0


def test_blood_curve_finds_ed_and_es(arch):
    studies, _ = scan_archive(str(arch / "arch"))
    cine = read_cine_sax(studies[0], type_study(studies[0]))
    curve = blood_curve(cine)                    # the fixture's disc is largest at phase 0, smallest at T/2
    assert int(np.argmax(curve)) == 0 and int(np.argmin(curve)) == N_PHASES // 2
    assert cine.slice_spacing_mm(10.0) == pytest.approx(8.0)


def test_display_masks_keep_the_centre_and_scale():
    n = 96
    rr, cc = np.mgrid[:n, :n] - (n - 1) / 2
    disc = (np.hypot(rr, cc) <= 10).astype(np.uint8) * 3          # radius 10 px of 2 mm = 20 mm
    out = display_masks(np.stack([disc, disc]), 2.0)
    assert out.shape == (2, CACHE_SIZE, CACHE_SIZE)
    r, c = np.nonzero(out[0] == 3)
    assert abs(r.mean() - (CACHE_SIZE - 1) / 2) < 0.6 and abs(c.mean() - (CACHE_SIZE - 1) / 2) < 0.6
    assert (out[0] == 3).sum() * 1.6 ** 2 == pytest.approx((disc == 3).sum() * 2.0 ** 2, rel=0.05)   # same area in mm²


def test_body_size_and_load_segmenter(seg):
    assert body_size(1.78, 80) == (pytest.approx(178.0), 80.0)
    assert body_size(178, 80) == (178.0, 80.0)                    # PatientSize written in cm
    assert body_size(None, 0) == (None, None) and body_size(17.8, 900) == (None, None)
    assert load_segmenter(seg) is seg and load_segmenter(False) is None


def test_payload_carries_measurements():
    row = {"study_key": "k", "views": ["cine_sax"], "qa": "{}", "lvef": 31.5, "lv_mass": float("nan"),
           "seg_quality": "check", "seg_flags": ["apex not covered"], "seg_fingerprint": "abc"}
    p = payload_row(row, {"study": [1.0]}, "m:1")
    assert p["lvef"] == 31.5 and p["lv_mass"] is None and p["max_wall"] is None          # NaN -> null
    assert p["seg_quality"] == "check" and p["seg_flags"] == ["apex not covered"] and p["seg_fingerprint"] == "abc"
    assert set(MEASUREMENTS) <= set(measurement_payload({}))
    assert pl.DataFrame([measurement_payload(row)]).height == 1

"""The exact label maps beside every synthetic DICOM series (phantom.dicom.labelmaps, imaging.slab)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import TISSUE
from cmr_search.phantom.dicom.labelmaps import acdc_seg, file_name, read_label_map, readme_text
from cmr_search.phantom.generate import _heart_frame, generate_archive, generate_study
from cmr_search.phantom.heart import anatomy
from cmr_search.phantom.heart.motion import es_fraction
from cmr_search.phantom.imaging import render
from cmr_search.phantom.imaging.labels import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY, SCAR
from cmr_search.phantom.profiles import get_profile
from cmr_search.phantom.randomness import study_rng

N_STUDIES, SEED = 3, 4


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("labels") / "a"
    generate_archive(out, N_STUDIES, "tiny", seed=SEED)
    return out


def _studies(root: Path):
    for sj in sorted(root.glob("*/study.json")):
        yield sj.parent, json.loads(sj.read_text())


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_label_file_beside_every_series(archive):
    for study_dir, rec in _studies(archive):
        assert rec["label_maps"] == "labels"
        names = {p.name for p in (study_dir / "labels").iterdir()}
        assert names == {"README.txt"} | {file_name(s) for s in rec["series"]}
        assert (study_dir / "labels" / "README.txt").read_text() == readme_text()


def test_label_frames_map_to_their_dicom_images(archive):
    for study_dir, rec in _studies(archive):
        for s in rec["series"]:
            lab = read_label_map(study_dir / "labels" / file_name(s))
            files = sorted((study_dir / s["folder"]).glob("*.dcm"))
            n = len(files)
            assert lab["tissue"].dtype == np.uint8 and lab["seg"].dtype == np.uint8
            assert lab["tissue"].shape == lab["seg"].shape and lab["tissue"].shape[0] == n
            assert str(lab["series_instance_uid"]) == s["series_instance_uid"]
            for path in files[:: max(1, n // 5)]:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                k = int(ds.InstanceNumber) - 1
                assert lab["tissue"].shape[1:] == (ds.Rows, ds.Columns)
                assert str(lab["sop_instance_uid"][k]) == ds.SOPInstanceUID
                assert int(lab["instance_number"][k]) == int(ds.InstanceNumber)
                assert np.allclose(lab["image_position_patient"][k], np.array(ds.ImagePositionPatient, float),
                                   atol=1e-3)
                assert np.allclose(lab["image_orientation_patient"][k],
                                   np.array(ds.ImageOrientationPatient, float), atol=1e-5)
                assert abs(float(lab["trigger_time_ms"][k]) - float(ds.TriggerTime)) < 0.01


def test_seg_follows_the_tissue_codes(archive):
    seen = set()
    for study_dir, rec in _studies(archive):
        for s in rec["series"]:
            lab = read_label_map(study_dir / "labels" / file_name(s))
            tis, seg = lab["tissue"], lab["seg"]
            assert np.array_equal(seg, acdc_seg(tis, lab.get("lge_pct")))
            assert set(np.unique(tis)) <= set(TISSUE.values())
            cavity = np.isin(tis, [TISSUE[k] for k in ("lv_blood", "papillary", "thrombus")])
            assert (seg[cavity] == LV_CAVITY).all()             # papillary muscles: LV cavity (ACDC)
            assert (seg[np.isin(tis, [TISSUE["rv_blood"], TISSUE["rv_trabecula"]])] == RV_CAVITY).all()
            assert np.isin(seg[tis == TISSUE["lv_myo"]], [LV_MYOCARDIUM, SCAR]).all()
            assert (tis[seg == SCAR] == TISSUE["lv_myo"]).all()
            other = ~np.isin(tis, [TISSUE[k] for k in ("lv_blood", "papillary", "thrombus", "rv_blood",
                                                       "rv_trabecula", "lv_myo")])
            assert (seg[other] == 0).all()                      # atria, aorta, RV wall, body: background
            seen |= set(np.unique(tis).tolist())
    assert {TISSUE[k] for k in ("lv_blood", "lv_myo", "rv_blood", "papillary", "lung", "fat")} <= seen


def test_lv_cavity_is_larger_at_ed_than_at_es_on_mid_slices(archive):
    for study_dir, rec in _studies(archive):
        cine = [s for s in rec["series"] if s["kind"] == "cine_sax"]
        maps = [read_label_map(study_dir / "labels" / file_name(s)) for s in cine]
        seg = np.concatenate([m["seg"] for m in maps])
        sl = np.concatenate([m["slice_index"] for m in maps])
        fr = np.concatenate([m["frame_index"] for m in maps])
        trig = np.concatenate([m["trigger_time_ms"] for m in maps])
        n_sl, n_fr = sl.max() + 1, fr.max() + 1
        area = np.zeros((n_sl, n_fr))
        area[sl, fr] = (seg == LV_CAVITY).sum(axis=(1, 2))
        rr = 60000.0 / rec["latent"]["hr_bpm"]
        es = es_fraction(rec["latent"]["hr_bpm"]) * rr
        for i in range(n_sl // 2 - 1, n_sl // 2 + 1):                # mid slices
            f_min = int(np.argmin(area[i]))
            assert area[i, 0] > 1.2 * area[i, f_min] > 0, (study_dir.name, i, area[i])
            t_min = trig[(sl == i) & (fr == f_min)][0]
            assert abs(t_min - es) < 0.2 * rr                       # smallest near end-systole


def test_same_seed_same_label_bytes_and_no_labels_leaves_dicom_unchanged(archive, tmp_path):
    rec = next(r for _, r in _studies(archive))
    again = generate_study(SEED, rec["study_index"], "tiny", tmp_path / "b")
    assert _digest(archive / rec["folder"]) == _digest(tmp_path / "b" / again["folder"])
    bare = generate_study(SEED, rec["study_index"], "tiny", tmp_path / "c", labels=False)
    assert bare["label_maps"] is None and not (tmp_path / "c" / bare["folder"] / "labels").exists()
    with_labels = {k: v for k, v in _digest(archive / rec["folder"]).items()
                   if not k.startswith("labels/") and k != "study.json"}
    without = {k: v for k, v in _digest(tmp_path / "c" / bare["folder"]).items() if k != "study.json"}
    assert with_labels == without                                   # labels never change the images
    grown = generate_study(SEED, rec["study_index"], "tiny", tmp_path / "c")   # resumed with labels
    assert grown["label_maps"] == "labels"
    assert _digest(tmp_path / "c" / bare["folder"]) == _digest(archive / rec["folder"])


def test_even_slab_labels_are_the_mid_plane_acdc_labels():
    """tiny: 2 slab samples, so the mid plane is re-sampled where they differ in ACDC label."""
    prof = get_profile("tiny")
    lat = params.sample_latent(study_rng(SEED, 1, 1), 1, "ICM")
    acq = params.sample_acquisition(study_rng(SEED, 1, 2), prof, 1, SEED, age=lat.age)
    frame = _heart_frame(acq, SEED, 1)
    heart = anatomy.Heart(lat, frame)
    series = render.render_study(lat, acq, prof, heart, frame, study_rng(SEED, 1, 3), nuisance=False)
    cine = next(s for s in series if s.kind == "cine_sax")
    rr = 60000.0 / lat.hr_bpm
    for i in (0, len(cine.planes) // 2, len(cine.planes) - 1):         # base, mid, apex
        for f in (0, cine.tissue.shape[1] // 3):
            pts = cine.planes[i].pixel_points(1, 0.0)
            tis, lge = heart.sample(pts, cine.trigger_times[f] / rr % 1.0)
            want = acdc_seg(tis, np.rint(lge * 100).astype(np.uint8))
            lge_pct = None if cine.lge_pct is None else cine.lge_pct[i, f]
            got = acdc_seg(cine.tissue[i, f], lge_pct)
            assert (got != want).mean() < 1e-3, (i, f)

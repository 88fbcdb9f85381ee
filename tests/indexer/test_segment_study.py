"""`cmr segment`'s work (indexer.segment_study / segment_output) with an untrained segmenter: NIfTI in ->
NIfTI out in the input's geometry; a DICOM folder in -> DICOM SEG or NIfTI out; bad inputs refused by name."""
from __future__ import annotations

import json

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from cmr_search.indexer.errors import SegmentInputError
from cmr_search.indexer.segment_study import load_input, segment_input
from cmr_search.model.segmentation import Segmenter
from tests.helpers.dicom_fixtures import SPACING, write_study


@pytest.fixture(scope="module")
def seg():
    return Segmenter.untrained("seg-unet-tiny", seed=0)


def _nifti(path, shape, zooms=(1.5, 1.5, 10.0, 30.0)):
    rng = np.random.default_rng(0)
    affine = np.array([[-1.5, 0, 0, 10], [0, 1.4, 0.2, -20], [0, 0, 10, 5], [0, 0, 0, 1.0]])
    img = nib.Nifti1Image(rng.normal(100, 20, shape).astype(np.int16), affine)
    img.header.set_zooms(zooms[:len(shape)])
    nib.save(img, str(path))
    return img


def test_nifti_4d_in_nifti_out_same_geometry(tmp_path, seg):
    src = _nifti(tmp_path / "cine.nii.gz", (40, 36, 5, 6))
    inp = load_input(tmp_path / "cine.nii.gz")
    assert inp.stack.shape == (5, 6, 36, 40) and inp.spacing == (1.5, 1.5) and inp.slice_mm == 10.0
    result = segment_input(inp, seg, tmp_path / "out")
    out = nib.load(str(tmp_path / "out" / "masks.nii.gz"))
    assert out.shape == src.shape and np.allclose(out.affine, src.affine)
    assert out.get_data_dtype() == np.uint8 and set(np.unique(np.asarray(out.dataobj))) <= {0, 1, 2, 3}
    saved = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert saved == result and saved["input"]["kind"] == "nifti"
    assert {"lvef", "seg_quality", "seg_flags", "ed_phase"} <= set(saved["measurements"])
    assert len(saved["lv_cavity_ml_per_phase"]) == 6


def test_nifti_3d_keeps_three_dimensions_and_reads_acdc_info(tmp_path, seg):
    (tmp_path / "Info.cfg").write_text("ED: 1\nES: 2\nGroup: NOR\nHeight: 180\nWeight: 80\n")
    src = _nifti(tmp_path / "ed.nii.gz", (32, 32, 4))
    inp = load_input(tmp_path / "ed.nii.gz")
    assert (inp.height_cm, inp.weight_kg) == (180.0, 80.0)
    segment_input(inp, seg, tmp_path / "out")
    out = nib.load(str(tmp_path / "out" / "masks.nii.gz"))
    assert out.shape == src.shape and np.allclose(out.affine, src.affine)


def test_dicom_folder_to_seg_and_to_nifti(tmp_path, seg):
    write_study(tmp_path / "arch", "s1", n_slices=6, n_phases=5, heart_slices=(1, 4), per_slice_series=False)
    inp = load_input(tmp_path / "arch" / "s1")
    assert inp.kind == "dicom" and inp.stack.shape == (6, 5, 64, 64) and inp.slice_mm == pytest.approx(8.0)
    result = segment_input(inp, seg, tmp_path / "seg_out", "auto")
    assert result["outputs"] == [f"seg/phase_{t:02d}.dcm" for t in range(1, 6)]
    ds = pydicom.dcmread(tmp_path / "seg_out" / "seg" / "phase_01.dcm")
    assert ds.Modality == "SEG" and [s.SegmentLabel for s in ds.SegmentSequence] == ["RV cavity", "LV myocardium", "LV cavity"]
    assert isinstance(hd.seg.segread(tmp_path / "seg_out" / "seg" / "phase_01.dcm"), hd.seg.Segmentation)
    segment_input(inp, seg, tmp_path / "nii_out", "nifti")
    out = nib.load(str(tmp_path / "nii_out" / "masks.nii.gz"))
    assert out.shape == (64, 64, 6, 5)
    assert np.allclose(np.abs(np.diag(out.affine)[:2]), [SPACING, SPACING * 0.8], atol=1e-6)
    assert np.linalg.norm(out.affine[:3, 2]) == pytest.approx(8.0)


def test_seg_refused_for_nifti_input(tmp_path, seg):
    _nifti(tmp_path / "cine.nii.gz", (32, 32, 4, 5))
    with pytest.raises(SegmentInputError, match="cine.nii.gz.*DICOM SEG"):
        segment_input(load_input(tmp_path / "cine.nii.gz"), seg, tmp_path / "out", "seg")


@pytest.mark.parametrize("shape, reason", [((32, 32), "single image"), ((32, 32, 1), "single image"),
                                           ((32, 32, 4, 5, 2), "5-D volume"), ((32, 32, 1, 6), "one slice"),
                                           ((8, 8, 4, 5), "too small"), ((32, 32, 3, 400), "at most")])
def test_bad_nifti_shapes_named(tmp_path, shape, reason):
    path = tmp_path / "bad.nii.gz"
    _nifti(path, shape, (1.0,) * len(shape))
    with pytest.raises(SegmentInputError, match=f"bad.nii.gz.*{reason}"):
        load_input(path)


def test_bad_inputs_named(tmp_path):
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(SegmentInputError, match="junk.nii.gz: not a readable NIfTI"):
        load_input(tmp_path / "junk.nii.gz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SegmentInputError, match="notes.txt: neither NIfTI"):
        load_input(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SegmentInputError, match="empty: no readable DICOM"):
        load_input(tmp_path / "empty")
    with pytest.raises(SegmentInputError, match="nowhere: no such file"):
        load_input(tmp_path / "nowhere")


def test_single_dicom_file_and_folder_without_cine_sax(tmp_path):
    study = write_study(tmp_path / "arch", "s1", n_slices=3, n_phases=3, per_slice_series=False, lge=True)
    one = sorted((tmp_path / "arch" / "s1").glob("sax_*.dcm"))[0]
    with pytest.raises(SegmentInputError, match=f"{one.name}: one DICOM file is a single image"):
        load_input(one)
    lge_only = tmp_path / "lge"
    lge_only.mkdir()
    for f in (tmp_path / "arch" / "s1").glob("lge_*.dcm"):
        f.rename(lge_only / f.name)
    with pytest.raises(SegmentInputError, match="lge: no cine short-axis series found"):
        load_input(lge_only)
    assert study["slice_positions"] == 3

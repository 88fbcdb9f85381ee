"""ACDC NIfTI import on a small generated example of the public layout."""
import nibabel as nib
import numpy as np
import polars as pl

from cmr_search.indexer.nifti import import_acdc, is_acdc
from cmr_search.indexer.prepare import prepare
from cmr_search.model.preprocess import CACHE_PHASES, CACHE_SIZE


def _patient(root, n, group, four_d=True):
    folder = root / f"patient{n:03d}"
    folder.mkdir(parents=True)
    (folder / "Info.cfg").write_text(f"ED: 1\nES: 5\nGroup: {group}\nHeight: 170.0\nNbFrame: 10\nWeight: 70.0\n")
    x, y = np.mgrid[:60, :50]
    data = np.zeros((60, 50, 6, 10), np.float32)                        # (x, y, z, t)
    for z in range(1, 5):
        for t in range(10):
            data[..., z, t] = 100 + 500 * (np.hypot(x - 25, y - 30) < 8 + 3 * np.cos(2 * np.pi * t / 10))
    affine = np.diag([1.5, 1.5, 10.0, 1.0])
    if four_d:
        img = nib.Nifti1Image(data, affine)
        img.header.set_zooms((1.5, 1.5, 10.0, 30.0))
        nib.save(img, folder / f"patient{n:03d}_4d.nii.gz")
    for t in (0, 4):
        nib.save(nib.Nifti1Image(data[..., t], affine), folder / f"patient{n:03d}_frame{t + 1:02d}.nii.gz")


def test_import_acdc_layout(tmp_path):
    _patient(tmp_path, 1, "DCM")
    _patient(tmp_path, 2, "HCM", four_d=False)
    assert is_acdc(tmp_path)
    out = list(import_acdc(tmp_path))
    assert [o[0] for o in out] == ["acdc:patient001", "acdc:patient002"]
    src, views, info = out[0]
    assert views["cine_sax"].shape == (CACHE_PHASES, CACHE_SIZE, CACHE_SIZE) and info["label"] == "DCM"
    assert info["qa"].frames == {"cine_sax": 10, "cine_sax_slices": 6} and info["Height"] == 170.0
    assert out[1][2]["qa"].frames["cine_sax"] == 2 and out[1][2]["label"] == "HCM"


def test_prepare_acdc(tmp_path):
    _patient(tmp_path / "acdc", 1, "MINF")
    r = prepare(tmp_path / "acdc", None, tmp_path / "cache", salt_file=tmp_path / "salt", progress=False)
    assert r.studies["label"].to_list() == ["MINF"] and r.n_failed == 0
    assert pl.read_parquet(tmp_path / "cache" / "link.parquet")["study_instance_uid"].to_list() == ["acdc:patient001"]

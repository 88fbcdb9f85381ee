"""`cmr segment`: parsing, exit codes and one-line messages naming the file (untrained segmenter)."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from cmr_search.model.segmentation import Segmenter
from cmr_search.ui.cli import main as cli
from cmr_search.ui.segment_cmd import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return Segmenter.untrained("seg-unet-tiny", seed=0).save(tmp_path_factory.mktemp("ckpt") / "seg")


def _cine(path, shape=(32, 32, 4, 6)):
    img = nib.Nifti1Image(np.random.default_rng(1).normal(50, 10, shape).astype(np.float32), np.diag([1.5, 1.5, 8, 1]))
    nib.save(img, str(path))
    return img


def test_segment_nifti_writes_masks_and_measurements(tmp_path, checkpoint, capsys):
    src = _cine(tmp_path / "cine.nii.gz")
    assert cli(["segment", str(tmp_path / "cine.nii.gz"), "--out", str(tmp_path / "out"),
                "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "segmented 4 slices x 6 phases" in out and "quality:" in out
    masks = nib.load(str(tmp_path / "out" / "masks.nii.gz"))
    assert masks.shape == src.shape and np.allclose(masks.affine, src.affine)
    m = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert m["segmenter"]["checkpoint"] == str(checkpoint) and m["input"]["shape_stcw"] == [4, 6, 32, 32]


@pytest.mark.parametrize("make, code, message", [
    (lambda p: p.joinpath("bad.nii.gz").write_bytes(b"garbage"), 1, "bad.nii.gz: not a readable NIfTI"),
    (lambda p: _cine(p / "bad.nii.gz", (32, 32, 1, 1)), 1, "bad.nii.gz: a single image"),
    (lambda p: _cine(p / "bad.nii.gz", (32, 32, 3, 4, 3)), 1, "bad.nii.gz: a 5-D volume"),
    (lambda p: p.joinpath("bad.nii.gz").mkdir(), 1, "bad.nii.gz: no readable DICOM"),
])
def test_bad_inputs_exit_1_naming_the_file(tmp_path, checkpoint, capsys, make, code, message):
    make(tmp_path)
    assert main([str(tmp_path / "bad.nii.gz"), "--out", str(tmp_path / "out"), "--checkpoint", str(checkpoint)]) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("cmr segment: ") and message in err and len(err.splitlines()) == 1


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.nii.gz: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path)])                               # --out is required
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path), "--out", "o", "--format", "png"])
    assert e.value.code == 2


def test_bad_checkpoint_exits_1(tmp_path, capsys):
    _cine(tmp_path / "cine.nii.gz")
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "cine.nii.gz"), "--out", str(tmp_path / "o"), "--checkpoint", str(tmp_path / "empty")]) == 1
    assert "not a segmenter checkpoint" in capsys.readouterr().err

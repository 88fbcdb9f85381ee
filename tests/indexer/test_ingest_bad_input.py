"""Bad input: each kind of broken file or folder gives one clear ErrorRecord (or a kept-with-warning
record) and the rest of the archive is still scanned."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pydicom
from pydicom.encaps import encapsulate

from tests.helpers.mr_files import mr_dataset, write, write_mr
from cmr_search.indexer import dicom_io
from cmr_search.indexer.scan import scan_archive
from cmr_search.indexer.series_typing import type_study


def _good(root, n=3):
    """A good 3-image series in root/good (what must survive every bad neighbour)."""
    for k in range(n):
        write_mr(root / "good" / f"{k}.dcm", study="1.1", series="1.1.1", ipp=(0, 0, 10.0 * k),
                 number=k + 1)


def _scan_one_error(root, bad_name: str, expect: str, n_good: int = 3):
    studies, errors = scan_archive(root)
    good = [i for st in studies for s in st.series for i in s.instances if "good" in i.path]
    assert len(good) == n_good, "the good files must still be scanned"
    assert len(errors) == 1, errors
    assert bad_name in errors[0].path and errors[0].stage == "scan"
    assert expect in errors[0].reason, errors[0].reason
    return studies, errors[0]


def test_zero_byte_file(tmp_path):
    _good(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "empty.dcm").write_bytes(b"")
    _scan_one_error(tmp_path, "empty.dcm", "empty file")


def test_random_bytes(tmp_path):
    _good(tmp_path)
    (tmp_path / "junk.bin").write_bytes(np.random.default_rng(0).bytes(5000))
    _scan_one_error(tmp_path, "junk.bin", "not a DICOM file")


def test_random_bytes_after_dicom_preamble(tmp_path):
    _good(tmp_path)
    data = b"\0" * 128 + b"DICM" + np.random.default_rng(1).bytes(3000)
    (tmp_path / "fake.dcm").write_bytes(data)
    studies, errors = scan_archive(tmp_path)
    assert len(errors) == 1 and "fake.dcm" in errors[0].path
    assert sum(len(s.instances) for st in studies for s in st.series) == 3


def test_truncated_in_pixel_data(tmp_path):
    _good(tmp_path)
    src = write_mr(tmp_path / "src.dcm", study="1.1", series="1.1.1", rows=64, cols=64, number=9)
    data = src.read_bytes()
    src.unlink()
    (tmp_path / "cut.dcm").write_bytes(data[:-1000])
    _scan_one_error(tmp_path, "cut.dcm", "truncated file")


def test_truncated_in_header(tmp_path):
    _good(tmp_path)
    data = mr_dataset()
    path = write(data, tmp_path / "x.dcm")
    raw = path.read_bytes()
    path.unlink()
    (tmp_path / "head.dcm").write_bytes(raw[:300])
    _, err = _scan_one_error(tmp_path, "head.dcm", "")
    assert "truncated" in err.reason or "corrupt" in err.reason


def test_dicom_without_pixel_data(tmp_path):
    _good(tmp_path)
    ds = mr_dataset()
    del ds.PixelData
    write(ds, tmp_path / "nopix.dcm")
    _scan_one_error(tmp_path, "nopix.dcm", "without Pixel Data")


def test_structured_report(tmp_path):
    _good(tmp_path)
    ds = mr_dataset(sop_class="1.2.840.10008.5.1.4.1.1.88.11")     # Basic Text SR
    for kw in ("Rows", "Columns", "PixelData"):
        delattr(ds, kw)
    write(ds, tmp_path / "sr.dcm")
    _scan_one_error(tmp_path, "sr.dcm", "structured report")


def test_presentation_state(tmp_path):
    _good(tmp_path)
    ds = mr_dataset(sop_class="1.2.840.10008.5.1.4.1.1.11.1")      # Grayscale Softcopy PR
    del ds.PixelData
    write(ds, tmp_path / "pr.dcm")
    _scan_one_error(tmp_path, "pr.dcm", "presentation state")


def test_unsupported_transfer_syntax(tmp_path):
    _good(tmp_path)
    ds = mr_dataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"     # MPEG2: no plugin decodes it
    ds.PixelData = encapsulate([b"\x00" * 64])
    write(ds, tmp_path / "mpeg.dcm")
    _, err = _scan_one_error(tmp_path, "mpeg.dcm", "1.2.840.10008.1.2.4.100")
    assert "install" in err.reason and "MPEG2" in err.reason


def test_compressed_syntax_with_plugin_missing(tmp_path, monkeypatch):
    _good(tmp_path)
    arr = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    ds = mr_dataset(pixels=arr)
    ds.compress(pydicom.uid.JPEGLSLossless, arr, generate_instance_uid=False)
    write(ds, tmp_path / "jls.dcm")
    real = dicom_io.decoder_for
    monkeypatch.setattr(dicom_io, "decoder_for",
                        lambda ts: None if ts == pydicom.uid.JPEGLSLossless else real(ts))
    _, err = _scan_one_error(tmp_path, "jls.dcm", "pyjpegls")


def test_missing_and_contradictory_geometry_kept_with_warning(tmp_path):
    _good(tmp_path)
    write_mr(tmp_path / "geo" / "noipp.dcm", study="1.1", series="1.1.2", ipp=None)
    write_mr(tmp_path / "geo" / "skew.dcm", study="1.1", series="1.1.3", iop=(1, 0, 0, 0.5, 1, 0))
    studies, errors = scan_archive(tmp_path)
    reasons = sorted(e.reason for e in errors)
    assert len(errors) == 2 and all(r.startswith("kept:") for r in reasons)
    assert any("ImagePositionPatient missing" in r for r in reasons)
    assert any("not orthonormal" in r for r in reasons)
    series = {s.series_instance_uid: s for s in studies[0].series}
    assert len(series) == 3 and series["1.1.2"].instances[0].ipp is None
    types = type_study(studies[0])                 # typing copes, with a low confidence
    assert all(0 <= t.confidence <= 1 for t in types.values())


def test_duplicate_instances(tmp_path):
    _good(tmp_path)
    shutil.copy(tmp_path / "good" / "1.dcm", tmp_path / "copy_of_1.dcm")
    studies, errors = scan_archive(tmp_path)
    assert sum(len(s.instances) for s in studies[0].series) == 3
    assert len(errors) == 1 and "duplicate SOPInstanceUID" in errors[0].reason
    assert errors[0].study == "1.1"


def test_unreadable_folder(tmp_path, monkeypatch):
    _good(tmp_path)
    write_mr(tmp_path / "locked" / "a.dcm", study="2.2", series="2.2.1")
    real = os.scandir
    locked = str(tmp_path / "locked")

    def scandir(path="."):
        if os.fspath(path) == locked:        # tests run as root: chmod 000 would not block reads
            raise PermissionError(13, "Permission denied", locked)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    studies, err = _scan_one_error(tmp_path, "locked", "Permission denied")
    assert "permissions" in err.reason and [s.study_instance_uid for s in studies] == ["1.1"]

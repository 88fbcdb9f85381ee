"""The byte-level fast path (indexer/dicom_fast.py) gives exactly what the pydicom path gives, and steps
aside (None) for anything outside its scope."""
import glob
import warnings

import numpy as np
import pytest
from pydicom.sequence import Sequence
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, RLELossless

import cmr_search.indexer.dicom_headers as H
import cmr_search.indexer.dicom_io as D
from tests.helpers.mr_files import SUNNYBROOK, enhanced_mr, mr_dataset, write, write_mr
from cmr_search.indexer.dicom_fast import parse


def _both(monkeypatch, path):
    """(fast header, pydicom header, fast pixels+rescale, pydicom pixels+rescale) of one file."""
    fast_h = H.read_header(str(path))
    arr, ds = D._decode_file(str(path))
    fast_px = (arr.copy(), D._rescale(ds, 0))
    with monkeypatch.context() as m:
        m.setattr(H, "read_fast", lambda p, s: None)
        m.setattr(D, "parse", lambda raw: None)
        slow_h = H.read_header(str(path))
        arr, ds = D._decode_file(str(path))
    return fast_h, slow_h, fast_px, (arr, D._rescale(ds, 0))


def _same(monkeypatch, path):
    fast_h, slow_h, (a, ra), (b, rb) = _both(monkeypatch, path)
    assert fast_h == slow_h
    assert np.array_equal(a, b) and a.dtype == b.dtype and ra == rb


@pytest.mark.parametrize("kw", [{}, {"signed": True}, {"slope": 2.5, "intercept": -7},
                                {"description": "cine  SAX\\extra", "ti": 300.0},
                                {"ipp": None, "iop": None, "trigger": None, "cardiac_images": None}])
def test_fast_equals_pydicom(tmp_path, monkeypatch, kw):
    f = write_mr(tmp_path / "a.dcm", rows=12, cols=10, **kw)
    assert parse(f.read_bytes()) is not None
    _same(monkeypatch, f)


def test_sequences_and_implicit_vr(tmp_path, monkeypatch):
    ds = mr_dataset(rows=6, cols=6)
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    ds.ReferencedImageSequence = Sequence([item])          # undefined length when written implicit
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    f = write(ds, tmp_path / "implicit.dcm")
    assert parse(f.read_bytes()) is not None
    _same(monkeypatch, f)


def test_out_of_scope_gives_none(tmp_path):
    f, _ = enhanced_mr(tmp_path / "enh.dcm")
    assert parse(f.read_bytes()) is None                    # Enhanced MR: pydicom path
    raw = write_mr(tmp_path / "ok.dcm").read_bytes()
    assert parse(raw[:-4]) is None                          # Pixel Data cut short
    assert parse(raw[128:]) is None                         # no preamble
    assert parse(b"") is None
    ds = mr_dataset(rows=8, cols=8)
    ds.compress(RLELossless)
    assert parse(write(ds, tmp_path / "rle.dcm").read_bytes()) is None


@pytest.mark.skipif(not SUNNYBROOK.is_dir(), reason=f"real data not found at {SUNNYBROOK} (/work/shared absent)")
def test_real_files_match(monkeypatch):
    warnings.simplefilter("ignore")
    files = sorted(glob.glob(str(SUNNYBROOK / "SCD0000101" / "**" / "*.dcm"), recursive=True))[::40]
    assert files
    for f in files:
        _same(monkeypatch, f)

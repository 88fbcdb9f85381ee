"""read_frames: rescale, multi-frame, every compressed syntax round-trips, missing plugin errors."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import uid as U

from tests.helpers.mr_files import SUNNYBROOK, enhanced_mr, mr_dataset, needs_sunnybrook, write, write_mr
from cmr_search.indexer import dicom_io
from cmr_search.indexer.dicom_io import decoders_available, read_frames
from cmr_search.indexer.errors import DecoderMissingError, PixelReadError
from cmr_search.indexer.scan import scan_archive

ARR = np.random.default_rng(0).integers(0, 4000, (64, 64)).astype(np.uint16)   # 12-bit MR-like


def _instances(root):
    studies, errors = scan_archive(root)
    assert errors == []
    return [i for st in studies for s in st.series for i in s.instances]


def _gdcm_change(src, dst, syntax) -> None:
    """JPEG Lossless has no pydicom encoder: transcode with python-gdcm."""
    gdcm = pytest.importorskip("gdcm")
    r = gdcm.ImageReader()
    r.SetFileName(str(src))
    assert r.Read()
    c = gdcm.ImageChangeTransferSyntax()
    ts = {"1.2.840.10008.1.2.4.70": gdcm.TransferSyntax.JPEGLosslessProcess14_1,
          "1.2.840.10008.1.2.4.57": gdcm.TransferSyntax.JPEGLosslessProcess14}[syntax]
    c.SetTransferSyntax(gdcm.TransferSyntax(ts))
    c.SetInput(r.GetImage())
    assert c.Change()
    w = gdcm.ImageWriter()
    w.SetFileName(str(dst))
    w.SetFile(r.GetFile())
    w.SetImage(c.GetOutput())
    assert w.Write()


def test_rescale_applied_float32(tmp_path):
    write_mr(tmp_path / "a.dcm", pixels=ARR, slope=0.5, intercept=-100)
    out = read_frames(_instances(tmp_path))
    assert out.dtype == np.float32 and out.shape == (1, 64, 64)
    np.testing.assert_array_equal(out[0], ARR * 0.5 - 100)


def test_signed_pixels(tmp_path):
    arr = (ARR.astype(np.int16) - 2000)
    write_mr(tmp_path / "a.dcm", pixels=arr, signed=True)
    np.testing.assert_array_equal(read_frames(_instances(tmp_path))[0], arr)


def test_enhanced_multiframe_frames_and_rescale(tmp_path):
    _, pixels = enhanced_mr(tmp_path / "e.dcm", frames=3)
    insts = _instances(tmp_path)
    out = read_frames([insts[2], insts[0]])           # order of the request is kept
    np.testing.assert_array_equal(out, np.stack([pixels[2], pixels[0]]) * 2.0 - 5)


@pytest.mark.parametrize("syntax", [U.RLELossless, U.JPEGLSLossless, U.JPEG2000Lossless])
def test_pydicom_encoded_syntaxes_round_trip(tmp_path, syntax):
    ds = mr_dataset(pixels=ARR)
    ds.BitsStored, ds.HighBit = 12, 11
    ds.compress(syntax, ARR, generate_instance_uid=False)
    write(ds, tmp_path / "c.dcm")
    insts = _instances(tmp_path)
    assert insts[0].transfer_syntax == syntax
    np.testing.assert_array_equal(read_frames(insts)[0], ARR)


def test_lossy_syntaxes_decode_close(tmp_path):
    for syntax, kw in ((U.JPEGLSNearLossless, {"jls_error": 2}),
                       (U.JPEG2000, {"j2k_cr": [2]})):
        ds = mr_dataset(pixels=ARR, sop=pydicom.uid.generate_uid())
        ds.BitsStored, ds.HighBit = 12, 11
        ds.compress(syntax, ARR, generate_instance_uid=False, **kw)
        write(ds, tmp_path / f"{syntax}.dcm")
    out = read_frames(_instances(tmp_path))
    err = np.abs(out - ARR)          # files sort as .81 (JPEG-LS) then .91 (JPEG 2000)
    assert err[0].max() <= 2                    # near-lossless: bounded error
    assert err[1].mean() < 0.02 * ARR.max()     # lossy at 2:1 on noise: close on average


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57"])
def test_jpeg_lossless_round_trip(tmp_path, syntax):
    src = write_mr(tmp_path / "src" / "raw.dcm", pixels=ARR)
    (tmp_path / "a").mkdir()
    _gdcm_change(src, tmp_path / "a" / "j.dcm", syntax)
    insts = _instances(tmp_path / "a")
    assert insts[0].transfer_syntax == syntax
    np.testing.assert_array_equal(read_frames(insts)[0], ARR)


def test_decoders_available_lists_syntaxes():
    avail = decoders_available()
    assert avail[U.ExplicitVRLittleEndian] and avail[U.RLELossless]
    for syntax in (U.JPEGLossless, U.JPEGLSLossless, U.JPEG2000Lossless):
        assert syntax in avail


def test_missing_plugin_error_names_file_syntax_package(tmp_path, monkeypatch):
    ds = mr_dataset(pixels=ARR)
    ds.BitsStored, ds.HighBit = 12, 11
    ds.compress(U.JPEG2000Lossless, ARR, generate_instance_uid=False)
    path = write(ds, tmp_path / "j2k.dcm")
    insts = _instances(tmp_path)
    monkeypatch.setattr(dicom_io, "decoder_for", lambda syntax: None)   # as if no plugin installed
    assert decoders_available()[U.JPEG2000Lossless] is False
    with pytest.raises(DecoderMissingError) as e:
        read_frames(insts)
    msg = str(e.value)
    assert str(path) in msg and U.JPEG2000Lossless in msg and "pylibjpeg-openjpeg" in msg


def test_shape_mismatch_is_a_clear_error(tmp_path):
    write_mr(tmp_path / "a.dcm", rows=8, cols=8, number=1)
    write_mr(tmp_path / "b.dcm", pixels=np.zeros((4, 4), np.uint16), number=2)
    with pytest.raises(PixelReadError, match="first is 8x8"):
        read_frames(_instances(tmp_path))


@needs_sunnybrook
def test_sunnybrook_pixels():
    studies, _ = scan_archive(SUNNYBROOK / "SCD0000101")
    insts = studies[0].series[0].instances[:20]
    out = read_frames(insts)
    assert out.shape == (20, 256, 256) and out.max() > 100

"""A hostile upload (issue 22, item 5): query-by-example zips that are bombs, lie in their headers, are
damaged in the ways zipfile knows, or hold images too large to decode are each refused with one line
(UploadError) naming the problem, before the cost; members are streamed to disk; an upload has a deadline,
and how many run at once is capped. The hostile zips are built here with zipfile (headers with pydicom)."""
from __future__ import annotations

import io
import os
import random
import struct
import threading
import tracemalloc
import zipfile

import pytest

from tests.helpers.mr_files import mr_dataset


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _refused(data: bytes, dest, match: str) -> str:
    """extract(data) raises UploadError matching `match`: one line, no server path, no traceback."""
    from cmr_search.ui.app.upload import UploadError, extract
    with pytest.raises(UploadError, match=match) as e:
        extract(data, dest)
    msg = str(e.value)
    assert "\n" not in msg and str(dest) not in msg and "/tmp" not in msg and "Traceback" not in msg
    return msg


# --- bombs and lying headers ---------------------------------------------------------------------
def test_bomb_member_ratio_refused(tmp_path):
    """One 64 MB member of zeros (about 64 kB packed, 1000:1): refused from the zip's directory."""
    bomb = _zip([("ok.dcm", b"x" * 100), ("bomb.dcm", bytes(64 << 20))])
    assert len(bomb) < 200_000
    _refused(bomb, tmp_path, r"more than 100:1: a zip bomb")
    assert not list(tmp_path.iterdir())                        # nothing written


def test_bomb_overall_ratio_refused(tmp_path):
    """Many members each under the per-file floor (512 kB of zeros): the whole zip's ratio refuses it."""
    _refused(_zip([(f"f{i}.dcm", bytes(512 << 10)) for i in range(40)]), tmp_path, r"from .* more than 100:1")


def _lie_about_size(data: bytes, name: bytes, size: int) -> bytes:
    """The zip with `name`'s uncompressed size set to `size` in its local and central headers."""
    d = bytearray(data)
    local = 0                                                   # the first (only) local header
    central = d.index(b"PK\x01\x02")
    assert d[local + 30:local + 30 + len(name)] == name
    struct.pack_into("<I", d, local + 22, size)
    struct.pack_into("<I", d, central + 24, size)
    return bytes(d)


def test_header_that_lies_about_size_refused(tmp_path):
    """The headers say 1000 bytes; the member inflates to 1 MB: refused, never written past 1000."""
    data = _lie_about_size(_zip([("a.dcm", os.urandom(1 << 19) * 2)]), b"a.dcm", 1000)
    _refused(data, tmp_path, r"damaged|more than its header says")
    assert not (tmp_path / "a.dcm").exists() or (tmp_path / "a.dcm").stat().st_size <= 1000


def test_copy_budget_stops_at_the_declared_size():
    """The running byte budget itself: a source that gives more than declared is cut off."""
    import shutil

    from cmr_search.ui.app.upload import UploadError, _Budget
    out = io.BytesIO()
    with pytest.raises(UploadError, match="more than its header says"):
        shutil.copyfileobj(io.BytesIO(bytes(3 << 20)), _Budget(out, 2 << 20), 1 << 20)
    assert out.tell() <= 2 << 20


def test_members_are_streamed_in_chunks(tmp_path):
    """A 24 MB stored member is copied a chunk at a time: the extraction's peak allocation stays small."""
    from cmr_search.ui.app.upload import extract
    block = os.urandom(1 << 16)                                 # incompressible: ratio 1
    data = _zip([("big.dcm", block * 384)], zipfile.ZIP_STORED)
    tracemalloc.start()
    try:
        assert extract(data, tmp_path) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "big.dcm").stat().st_size == 24 << 20
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MB while unpacking a 24 MB file"


# --- damaged zips: one line each -------------------------------------------------------------------
def _bad_crc() -> bytes:
    d = bytearray(_zip([("a.dcm", b"hello world" * 100)], zipfile.ZIP_STORED))
    d[d.index(b"hello")] ^= 1
    return bytes(d)


def _flag(data: bytes, *, flag: int = 0, method: int | None = None) -> bytes:
    """Set general-purpose flag bits and/or the method in the first local and central headers."""
    d = bytearray(data)
    c = d.index(b"PK\x01\x02")
    d[6] |= flag
    d[c + 8] |= flag
    if method is not None:
        struct.pack_into("<H", d, 8, method)
        struct.pack_into("<H", d, c + 10, method)
    return bytes(d)


def _truncated_member() -> bytes:
    """The member's compressed data cut by half; the central directory kept (and moved up)."""
    d = _zip([("a.dcm", os.urandom(50_000))])
    c, e = d.index(b"PK\x01\x02"), d.index(b"PK\x05\x06")
    cut = 20_000
    cd = bytearray(d[c:])
    struct.pack_into("<I", cd, e - c + 16, struct.unpack_from("<I", cd, e - c + 16)[0] - cut)
    return d[:c - cut] + bytes(cd)


HOSTILE = {
    "bad CRC": (_bad_crc, r"damaged \(Bad CRC-32"),
    "encrypted member": (lambda: _flag(_zip([("a.dcm", b"x" * 100)], zipfile.ZIP_STORED), flag=1),
                         r"encrypted"),
    "unknown compression method": (lambda: _flag(_zip([("a.dcm", b"x" * 100)], zipfile.ZIP_STORED), method=99),
                                   r"compression method 99"),
    "bzip2 member": (lambda: _zip([("a.dcm", b"x" * 100)], zipfile.ZIP_BZIP2), r"compression method 12"),
    "file then folder": (lambda: _zip([("a", b"x"), ("a/b", b"y")]), r"both a file and a folder named 'a'"),
    "folder then file": (lambda: _zip([("a/b", b"y"), ("a", b"x")]), r"both a file and a folder named 'a'"),
    "folder entry then file": (lambda: _zip([("a/", b""), ("a", b"x")]), r"both a file and a folder"),
    "two files of one name": (lambda: _zip([("a/b", b"x"), ("a/./b", b"y")]), r"two files named"),
    "truncated member": (_truncated_member, r"damaged"),
    "truncated zip": (lambda: _zip([("a.dcm", os.urandom(5000))])[:3000], r"not a zip file"),
    "not a zip": (lambda: b"not a zip at all", r"not a zip file"),
    "empty upload": (lambda: b"", r"not a zip file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_damaged_zip_is_one_line(tmp_path, case):
    make, match = HOSTILE[case]
    _refused(make(), tmp_path / "dest", match)


def test_mutated_zips_never_raise_anything_but_upload_error(tmp_path):
    """400 seeded random byte flips and cuts of a small zip: each is unpacked or refused with one line."""
    from cmr_search.ui.app.upload import UploadError, extract
    base = _zip([("a/x.dcm", bytes(range(256)) * 40), ("b.dcm", b"hello" * 300)])
    rng = random.Random(22)
    for i in range(400):
        d = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        if rng.random() < 0.2:
            d = d[:rng.randrange(len(d))]
        dest = tmp_path / str(i)
        try:
            extract(bytes(d), dest)
        except UploadError as e:
            assert "\n" not in str(e) and str(tmp_path) not in str(e)


def test_dicomdir_is_not_unpacked(tmp_path):
    """A DICOMDIR's references could point outside the folder: it is left out (the walk finds the files)."""
    from cmr_search.ui.app.upload import extract
    assert extract(_zip([("DICOMDIR", b"x"), ("a/IM1", b"y")]), tmp_path) == 1
    assert not (tmp_path / "DICOMDIR").exists() and (tmp_path / "a/IM1").exists()


# --- image matrix: from the header, before decoding --------------------------------------------------
def _dicom(rows: int, cols: int, frames: int | None = None) -> bytes:
    """An MR file whose header claims rows x cols (x frames) over 8 x 8 pixels of data."""
    ds = mr_dataset(rows=8, cols=8)
    ds.Rows, ds.Columns = rows, cols
    if frames:
        ds.NumberOfFrames = frames
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def no_decoding(monkeypatch):
    """embed_study (the indexer's scan, pixel decoding and embedding) must not be reached."""
    import cmr_search.indexer.query_by_example as qbe

    def decode(*a, **k):
        raise AssertionError("the indexer was reached: pixels would be decoded")
    monkeypatch.setattr(qbe, "embed_study", decode)


@pytest.mark.parametrize("rows, cols, frames, match", [
    (2048, 2048, None, r"an image is 2048 x 2048 pixels; at most 1024 x 1024"),
    (64, 1025, None, r"an image is 64 x 1025 pixels"),
    (256, 256, 3000, r"more than 128 million pixels"),
])
def test_matrix_limits_from_the_header(no_decoding, rows, cols, frames, match):
    from cmr_search.ui.app.upload import UploadError, embed_upload
    data = _zip([("ok/IM1", _dicom(64, 64)), ("big/IM1", _dicom(rows, cols, frames))])
    with pytest.raises(UploadError, match=match):
        embed_upload(data, model=None)


def test_total_pixels_add_up_over_files(tmp_path):
    from cmr_search.ui.app.upload import UploadError, check_images
    for i in range(3):
        (tmp_path / f"IM{i}").write_bytes(_dicom(1024, 1024, 50))          # 52 Mpx each, 157 in all
    (tmp_path / "notes.txt").write_text("not DICOM")
    with pytest.raises(UploadError, match="more than 128 million pixels"):
        check_images(tmp_path)
    (tmp_path / "IM2").unlink()
    assert check_images(tmp_path) == 2 * 1024 * 1024 * 50


def _element_bomb(n: int) -> bytes:
    """An MR file with n empty private elements (8 bytes each) in its header: costly to parse."""
    import numpy as np
    ds = mr_dataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"         # implicit VR: tag, 4-byte length
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    head = buf.getvalue()
    cut = head.index(b"\x08\x00\x16\x00")                  # before (0008,0016): groups stay in order
    els = np.zeros(n, dtype=[("g", "<u2"), ("e", "<u2"), ("l", "<u4")])
    els["g"], els["e"] = 0x0007, np.arange(n) % 0xFFFF + 1      # private group 7 (tags repeat: still parsed)
    return head[:cut] + els.tobytes() + head[cut:]


def test_huge_header_refused_before_the_indexer(no_decoding, monkeypatch):
    """A header that does not end within MAX_HEADER_MB (here 1 MB: 200,000 elements) is refused; pydicom
    parses a header element by element, the indexer's scan with it."""
    from cmr_search.ui.app import upload
    monkeypatch.setattr(upload, "MAX_HEADER_MB", 1)
    with pytest.raises(upload.UploadError, match=r"DICOM header \(all before its pixels\) is over 1 MB"):
        upload.embed_upload(_zip([("IM1", _element_bomb(200_000))]), model=None)


def test_deflated_dicom_refused(no_decoding):
    """A deflated data set is inflated whole by pydicom (a DICOM-level bomb the zip ratio cannot see)."""
    from cmr_search.ui.app.upload import UploadError, embed_upload
    ds = mr_dataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = _zip([("IM1", buf.getvalue())], zipfile.ZIP_STORED)
    with pytest.raises(UploadError, match="deflated DICOM"):
        embed_upload(data, model=None)


# --- time and concurrency -------------------------------------------------------------------------
def test_deadline_refuses_a_slow_upload(no_decoding, monkeypatch):
    from cmr_search.ui.app import upload
    monkeypatch.setattr(upload, "MAX_SECONDS", 0)
    with pytest.raises(upload.UploadError, match=r"took longer than 0 s"):
        upload.embed_upload(_zip([("IM1", _dicom(64, 64))]), model=None)


def test_one_upload_per_session_and_two_in_all(no_decoding):
    from cmr_search.ui.app.upload import UploadError, embed_upload, upload_slot
    data = _zip([("IM1", _dicom(64, 64))])
    with upload_slot("session-a"):
        with pytest.raises(UploadError, match="upload of this session is still being processed"):
            embed_upload(data, model=None, owner="session-a")
        with upload_slot("session-b"):
            for owner in ("session-c", None):
                with pytest.raises(UploadError, match="another upload is being processed; try again"):
                    embed_upload(data, model=None, owner=owner)
    with upload_slot("session-a"):                              # released, also after a refusal
        pass


def test_slots_are_not_leaked_by_failures(no_decoding):
    """Refused uploads (a bad zip, the matrix limit) give their slot back: 5 in a row, from 2 threads."""
    from cmr_search.ui.app.upload import UploadError, embed_upload, upload_slot
    bad = [b"not a zip", _zip([("IM1", _dicom(2048, 2048))])]
    errors: list[str] = []

    def run(k: int) -> None:
        for i in range(5):
            try:
                embed_upload(bad[(i + k) % 2], model=None, owner=f"s{k}")
            except UploadError as e:
                errors.append(str(e))
    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(errors) == 10 and not any("another upload" in e for e in errors)
    with upload_slot("x"), upload_slot("y"):
        pass


def test_large_files_that_are_not_dicom_pass(tmp_path, monkeypatch):
    """A viewer program or a PDF next to the images (CD exports) is not parsed: no header limit applies."""
    from cmr_search.ui.app import upload
    monkeypatch.setattr(upload, "MAX_HEADER_MB", 1)
    (tmp_path / "viewer.exe").write_bytes(b"MZ" + os.urandom(3 << 20))
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4" + bytes(3 << 20))
    (tmp_path / "IM1").write_bytes(_dicom(64, 64))
    assert upload.check_images(tmp_path) == 64 * 64

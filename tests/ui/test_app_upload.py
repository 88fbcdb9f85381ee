"""Query by example: upload a zipped DICOM study, embed it through the indexer, find similar studies;
the zip checks (size, zip-slip, links; the hostile uploads of issue 22: test_upload_hostile.py)."""
import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from tests.helpers.app_fixtures import app, goto, result_keys, study_zip, ui_data  # noqa: F401


def test_upload_finds_similar(app, study_zip):
    at = goto(app, "Query by example")
    at.file_uploader(key="example_zip").set_value(("study.zip", study_zip, "application/zip")).run()
    assert not at.exception, at.exception
    assert at.session_state.example is not None
    assert {"study", "cine"} <= set(at.session_state.example["vectors"])
    assert len(result_keys(at, "ex_open_")) == 10
    assert at.status and at.status[0].state == "complete"


def test_upload_not_a_zip(app):
    at = goto(app, "Query by example")
    at.file_uploader(key="example_zip").set_value(("x.zip", b"not a zip", "application/zip")).run()
    assert not at.exception and at.session_state.example is None
    assert "not a zip" in at.status[0].label


def test_upload_damaged_zip_is_one_line(app, study_zip):
    """A zip with a bad CRC (issue 22): the page says so in one line; no traceback, no server path."""
    data = bytearray(study_zip)
    m = zipfile.ZipFile(io.BytesIO(study_zip)).infolist()[5]
    name_len, extra_len = struct.unpack_from("<HH", data, m.header_offset + 26)
    data[m.header_offset + 30 + name_len + extra_len + 10] ^= 0xFF   # a byte of its (stored) data
    at = goto(app, "Query by example")
    at.file_uploader(key="example_zip").set_value(("x.zip", bytes(data), "application/zip")).run()
    assert not at.exception and at.session_state.example is None
    label = at.status[0].label.replace("\\", "")             # shown escaped (safe_text.md)
    assert label.startswith("upload refused: the zip is damaged") and "/tmp" not in label


def _zip(entries: dict[str, bytes], link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize("name", ["../evil.dcm", "/abs/evil.dcm", "a/../../evil.dcm", "C:/evil.dcm",
                                  "a\\..\\..\\evil.dcm"])
def test_zip_slip_refused(tmp_path, name):
    from cmr_search.ui.app.upload import UploadError, extract
    with pytest.raises(UploadError, match="unsafe path"):
        extract(_zip({"ok.dcm": b"x", name: b"y"}), tmp_path / "dest")
    assert not (tmp_path / "evil.dcm").exists() and not Path("/abs/evil.dcm").exists()


def test_zip_links_and_size_refused(tmp_path, monkeypatch):
    from cmr_search.ui.app import upload
    with pytest.raises(upload.UploadError, match="symbolic link"):
        upload.extract(_zip({"ok.dcm": b"x"}, link="lnk"), tmp_path)
    monkeypatch.setattr(upload, "MAX_UPLOAD_MB", 0)
    with pytest.raises(upload.UploadError, match="at most 0 MB"):
        upload.extract(_zip({"ok.dcm": b"x"}), tmp_path)


def test_zip_extracts_inside_dest(tmp_path):
    from cmr_search.ui.app.upload import extract
    assert extract(_zip({"a/b/c.dcm": b"x", "d.dcm": b"y"}), tmp_path) == 2
    assert (tmp_path / "a/b/c.dcm").read_bytes() == b"x"

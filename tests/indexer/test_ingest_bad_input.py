"""Bad input: each kind of broken file or folder gives one clear ErrorRecord (or a kept-with-warning
record) and the rest of the archive is still scanned. An archive with no DICOM study at all, and reports
that cannot be used, are errors that say what was seen (docs/indexing.md, "Bad input"); reports in other
encodings and formats are read (the table's rows are backed here and in tests/ui/test_index_cli_input.py).
"""
from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import polars as pl
import pydicom
import pytest
from pydicom.encaps import encapsulate

from tests.helpers.dicom_fixtures import write_study
from tests.helpers.mr_files import mr_dataset, write, write_mr
from cmr_search.indexer import dicom_io
from cmr_search.indexer.errors import ReportFormatError
from cmr_search.indexer.prepare import prepare
from cmr_search.indexer.reports import (UNMATCHED_KEYS_FILE, ReportsMatchNothingError, ReportSummary,
                                        load_reports)
from cmr_search.indexer.records import ErrorRecord
from cmr_search.indexer.scan import NoStudiesError, no_studies_message, scan_archive
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


# --- archives without any DICOM study ----------------------------------------------------------------
def _prepare(arch, reports, out, tmp_path):
    return prepare(arch, reports, out, salt_file=tmp_path / "salt", progress=False, segmenter=False)


def _non_dicom(folder):
    for i in range(10):
        (folder / "notes" / f"n{i}.txt").parent.mkdir(parents=True, exist_ok=True)
        (folder / "notes" / f"n{i}.txt").write_text("not an image")
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def test_empty_archive_is_an_error_naming_the_folder(tmp_path):
    (tmp_path / "arch").mkdir()
    with pytest.raises(NoStudiesError, match="folder is empty") as e:
        _prepare(tmp_path / "arch", None, tmp_path / "c", tmp_path)
    assert str(tmp_path / "arch") in str(e.value) and not (tmp_path / "c" / "studies.parquet").exists()


def test_non_dicom_archive_says_what_it_holds(tmp_path):
    with pytest.raises(NoStudiesError, match=r"12 files, none DICOM: 10 \.txt, 2 \.png\.") as e:
        _prepare(_non_dicom(tmp_path / "arch"), None, tmp_path / "c", tmp_path)
    assert "n0.txt" not in str(e.value)                     # counts by kind, never file names


def test_garbage_only_archive_keeps_the_cache_it_had(tmp_path):
    st = write_study(tmp_path / "arch", "s0", n_slices=5, n_phases=8, heart_slices=(1, 3))
    assert _prepare(tmp_path / "arch", None, tmp_path / "c", tmp_path).studies.height == 1
    shutil.rmtree(st["dir"])
    (tmp_path / "arch" / "junk.dcm").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(NoStudiesError) as e:
        _prepare(tmp_path / "arch", None, tmp_path / "c", tmp_path)
    msg = str(e.value)
    assert "1 files, none a readable DICOM image: 1 .dcm (1 refused, e.g. not a DICOM file" in msg
    assert "keeps its 1 studies unchanged" in msg
    assert pl.read_parquet(tmp_path / "c" / "studies.parquet").height == 1      # nothing lost


def test_no_studies_message_never_names_a_file(tmp_path):
    path = tmp_path / "DOE^JANE" / "x.dcm"
    path.parent.mkdir()
    path.write_bytes(b"x")
    err = ErrorRecord(str(path), "", "scan", f"{path}: cannot decode transfer syntax MPEG2; install x")
    msg = no_studies_message(tmp_path, [err])
    assert "DOE^JANE" not in msg and "1 .dcm (1 refused, e.g. the file: cannot decode" in msg


# --- reports: encodings, formats, columns, matching ----------------------------------------------------
REPORT = "IMPRESSION: Normal LV, café-au-lait – EF 60% (d’après IRM)"


def test_windows_1252_report_is_read_and_says_so(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(f'accession_number,report\nA1,"{REPORT}"\nA2,Récidive\n'.encode("cp1252"))
    df, source = load_reports(path)
    assert df.rows() == [("A1", REPORT), ("A2", "Récidive")]
    assert (source.format, source.encoding, source.plain) == ("csv", "cp1252", False)


@pytest.mark.parametrize("kind", ["tsv", "semicolon", "parquet", "jsonl", "json", "utf16", "folder"])
def test_report_formats(tmp_path, kind):
    rows = [{"AccessionNumber": "A1", "Report Text": REPORT}, {"AccessionNumber": "0012", "Report Text": "x, y"}]
    df = pl.DataFrame(rows)
    path = tmp_path / {"tsv": "r.tsv", "semicolon": "r.csv", "parquet": "r.parquet", "jsonl": "r.jsonl",
                       "json": "r.json", "utf16": "r.csv", "folder": "txt"}[kind]
    if kind == "tsv":
        df.write_csv(path, separator="\t")
    elif kind == "semicolon":
        df.write_csv(path, separator=";")
    elif kind == "parquet":
        df.write_parquet(path)
    elif kind == "jsonl":
        path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("cp1252"))
    elif kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "utf16":
        path.write_bytes(df.write_csv().encode("utf-16"))
    else:
        path.mkdir()
        for r in rows:
            (path / f"{r['AccessionNumber']}.txt").write_bytes(r["Report Text"].encode("cp1252"))
    got, source = load_reports(path)
    assert sorted(got.rows()) == [("0012", "x, y"), ("A1", REPORT)]                # 0-prefix kept
    assert source.format == {"semicolon": "csv", "utf16": "csv"}.get(kind, kind)
    assert source.plain == (kind in ("tsv", "semicolon", "parquet", "json"))


def test_unknown_report_columns_name_file_columns_and_docs(tmp_path):
    pl.DataFrame({"patient": ["x"], "notes": ["y"]}).write_csv(tmp_path / "bad.csv")
    with pytest.raises(ReportFormatError) as e:
        load_reports(tmp_path / "bad.csv")
    msg = str(e.value)
    assert str(tmp_path / "bad.csv") in msg and "['patient', 'notes']" in msg and "docs/indexing.md" in msg


def _reports(path, keys):
    pl.DataFrame({"accession_number": keys, "report": [f"IMPRESSION: r{i}" for i in range(len(keys))]}
                 ).write_csv(path)
    return path


def test_reports_matching_no_study_change_nothing(tmp_path):
    st = write_study(tmp_path / "arch", "s0", n_slices=5, n_phases=8, heart_slices=(1, 3))
    good = _prepare(tmp_path / "arch", _reports(tmp_path / "good.csv", [st["acc"]]), tmp_path / "c", tmp_path)
    assert good.studies["impression"].to_list() == ["r0"]
    bad = _reports(tmp_path / "bad.csv", ["ZZ9", "ZZ8"])
    with pytest.raises(ReportsMatchNothingError) as e:
        _prepare(tmp_path / "arch", bad, tmp_path / "c", tmp_path)
    msg = str(e.value)
    keys = tmp_path / "c" / UNMATCHED_KEYS_FILE
    assert "none of the 2 report rows" in msg and str(bad) in msg and str(keys) in msg and "ZZ9" not in msg
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600 and keys.read_text() == "ZZ8\nZZ9\n"
    assert pl.read_parquet(tmp_path / "c" / "studies.parquet")["impression"].to_list() == ["r0"]   # kept


def test_report_file_without_rows_is_an_error(tmp_path):
    write_study(tmp_path / "arch", "s0", n_slices=5, n_phases=8, heart_slices=(1, 3))
    (tmp_path / "empty.csv").write_text("accession_number,report\n")
    with pytest.raises(ReportsMatchNothingError, match="holds no report rows"):
        _prepare(tmp_path / "arch", tmp_path / "empty.csv", tmp_path / "c", tmp_path)


def test_report_summary_counts_and_unmatched_keys_file(tmp_path):
    studies = [write_study(tmp_path / "arch", f"s{i}", n_slices=5, n_phases=8, heart_slices=(1, 3))
               for i in range(2)]
    reports = _reports(tmp_path / "r.csv", [studies[0]["acc"], "NOPE1", "NOPE2", studies[0]["acc"]])
    _prepare(tmp_path / "arch", reports, tmp_path / "c", tmp_path)
    summary = ReportSummary.load(tmp_path / "c")
    keys = tmp_path / "c" / UNMATCHED_KEYS_FILE
    assert (summary.rows, summary.studies, summary.with_report, summary.unmatched, summary.duplicates) == \
        (4, 2, 1, 2, 1)
    assert summary.lines() == [f"reports: 1 of 2 studies have a report; 1 without; 2 report rows matched no "
                               f"study (keys in {keys}, readable by you only); 1 second reports of a study "
                               "ignored"]
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600 and keys.read_text() == "NOPE1\nNOPE2\n"
    _prepare(tmp_path / "arch", _reports(reports, [studies[0]["acc"], studies[1]["acc"]]), tmp_path / "c",
             tmp_path)
    assert not keys.exists() and ReportSummary.load(tmp_path / "c").with_report == 2   # stale keys removed
    _prepare(tmp_path / "arch", None, tmp_path / "c", tmp_path)
    assert ReportSummary.load(tmp_path / "c") is None              # a run without reports: no summary

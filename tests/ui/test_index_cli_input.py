"""`cmr prepare`, `cmr index` and `cmr search` on bad input: what the user sees and the exit code, one test
per row of the "Bad input" table in docs/indexing.md (the library side: tests/indexer/test_ingest_bad_input.py).
"""
from __future__ import annotations

import shutil
import stat

import polars as pl
import pytest

from tests.helpers.dicom_fixtures import write_study
from tests.helpers.search_helpers import make_rows
from cmr_search.indexer import index as index_module
from cmr_search.indexer import prepare as prepare_module
from cmr_search.indexer.index import IndexResult
from cmr_search.indexer.reports import UNMATCHED_KEYS_FILE
from cmr_search.indexer.study_rows import PrepareResult
from cmr_search.search import Store
from cmr_search.ui import index_cmd, prepare_cmd, search_cmd

REPORT = "IMPRESSION: Normal LV, café-au-lait – EF 60%"


@pytest.fixture(autouse=True)
def no_segmenter(monkeypatch):
    """prepare measures nothing here (the shipped segmenter would only cost time)."""
    monkeypatch.setattr(prepare_module, "load_segmenter", lambda segmenter=None: None)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """One small DICOM study -> (archive folder, its accession number)."""
    root = tmp_path_factory.mktemp("arch")
    st = write_study(root / "arch", "s0", n_slices=5, n_phases=8, heart_slices=(1, 3))
    return root / "arch", st["acc"]


def _prepare(capsys, tmp_path, arch, *extra):
    rc = prepare_cmd.main([str(arch), "--out", str(tmp_path / "c"), "--salt-file", str(tmp_path / "salt"),
                           "--no-progress", *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def _non_dicom(folder):
    (folder / "notes").mkdir(parents=True)
    for i in range(10):
        (folder / "notes" / f"n{i}.txt").write_text("x")
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(b"\x89PNG")
    return folder


def test_prepare_empty_folder_exits_1_naming_it(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, out, err = _prepare(capsys, tmp_path, tmp_path / "empty")
    assert rc == 1 and not out
    assert f"cmr prepare: no DICOM study in archive folder {tmp_path / 'empty'}: folder is empty" in err


def test_prepare_non_dicom_folder_exits_1_with_what_it_holds(tmp_path, capsys):
    rc, _, err = _prepare(capsys, tmp_path, _non_dicom(tmp_path / "docs"))
    assert rc == 1 and "12 files, none DICOM: 10 .txt, 2 .png." in err


def test_prepare_rerun_with_nothing_new_is_no_error(tmp_path, capsys, archive):
    arch, _ = archive
    assert _prepare(capsys, tmp_path, arch)[0] == 0
    rc, out, _ = _prepare(capsys, tmp_path, arch)
    assert rc == 0 and "cached 1 studies" in out and "(0 built, 1 unchanged, 0 failed" in out


def test_prepare_windows_1252_reports_say_their_encoding(tmp_path, capsys, archive):
    arch, acc = archive
    (tmp_path / "r.csv").write_bytes(f'AccessionNumber;Report Text\n{acc};"{REPORT}"\n'.encode("cp1252"))
    rc, out, _ = _prepare(capsys, tmp_path, arch, "--reports", str(tmp_path / "r.csv"))
    assert rc == 0, out
    assert f"reports: read {tmp_path / 'r.csv'} as csv, text encoding cp1252 (detected: not UTF-8" in out
    assert "reports: 1 of 1 studies have a report; 0 without" in out
    assert pl.read_parquet(tmp_path / "c" / "studies.parquet")["impression"].to_list() == [REPORT[12:]]


def test_prepare_partial_match_prints_counts_not_keys(tmp_path, capsys, archive):
    arch, acc = archive
    pl.DataFrame({"accession": [acc, "SECRET-ACC-1"], "report": ["a", "b"]}).write_parquet(tmp_path / "r.parquet")
    rc, out, err = _prepare(capsys, tmp_path, arch, "--reports", str(tmp_path / "r.parquet"))
    keys = tmp_path / "c" / UNMATCHED_KEYS_FILE
    assert rc == 0 and "SECRET-ACC-1" not in out + err
    assert (f"reports: 1 of 1 studies have a report; 0 without; 1 report rows matched no study (keys in {keys}, "
            "readable by you only)") in out
    assert keys.read_text() == "SECRET-ACC-1\n" and stat.S_IMODE(keys.stat().st_mode) == 0o600


def test_prepare_reports_matching_nothing_exit_1(tmp_path, capsys, archive):
    arch, _ = archive
    (tmp_path / "r.jsonl").write_text('{"accession": "SECRET-ACC-2", "report": "x"}\n')
    rc, out, err = _prepare(capsys, tmp_path, arch, "--reports", str(tmp_path / "r.jsonl"))
    assert rc == 1 and "SECRET-ACC-2" not in out + err
    assert "cmr prepare: none of the 1 report rows in" in err and "so nothing was cached" in err
    assert not (tmp_path / "c" / "studies.parquet").exists()


def test_prepare_unknown_report_columns_exit_1(tmp_path, capsys, archive):
    arch, _ = archive
    (tmp_path / "r.tsv").write_text("patient\tnotes\nx\ty\n")
    rc, _, err = _prepare(capsys, tmp_path, arch, "--reports", str(tmp_path / "r.tsv"))
    assert rc == 1 and "no key (accession number or StudyInstanceUID) column among ['patient', 'notes']" in err
    assert "docs/indexing.md" in err


def test_prepare_with_no_study_cached_exits_1(tmp_path, capsys, archive, monkeypatch):
    failed = PrepareResult(tmp_path / "c", pl.DataFrame({"study_key": []}), 0, 0, 1, 1, 0.1)
    monkeypatch.setattr(prepare_cmd, "prepare", lambda *a, **k: failed)
    rc, out, err = _prepare(capsys, tmp_path, archive[0])
    assert rc == 1 and "cached 0 studies" in out
    assert f"cmr prepare: no study could be cached (1 failed); the reasons are in {tmp_path / 'c'}" in err


@pytest.mark.parametrize("cmd", [prepare_cmd, index_cmd])
def test_help_points_to_the_reports_format(cmd, capsys):
    try:
        rc = cmd.main(["--help"])
    except SystemExit as e:                        # prepare lets argparse exit
        rc = e.code
    assert rc == 0 and "docs/indexing.md" in capsys.readouterr().out


def _index(capsys, tmp_path, *argv):
    rc = index_cmd.main([*argv, "--data", str(tmp_path / "data"), "--salt-file", str(tmp_path / "salt"),
                         "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("kind", ["empty", "non-DICOM"])
def test_index_empty_or_non_dicom_folder_exits_1_before_any_work(tmp_path, capsys, kind):
    arch = tmp_path / "arch"
    arch.mkdir() if kind == "empty" else _non_dicom(arch)
    rc, _, err = _index(capsys, tmp_path, str(arch))
    seen = "folder is empty" if kind == "empty" else "12 files, none DICOM: 10 .txt, 2 .png"
    assert rc == 1 and f"cmr index: no DICOM study in archive folder {arch}: {seen}" in err
    assert not (tmp_path / "data").exists()                  # no model saved, no index created


@pytest.fixture
def fake_index(monkeypatch):
    """index_archive that only prepares (the embedding is tested in tests/indexer/test_index.py)."""
    def run(archive, reports, settings, **kw):
        prepare_module.prepare(archive, reports, settings.folder.cache, salt_file=kw["salt_file"], progress=False)
        return IndexResult(settings.folder.root, "here", "m", 1, 1, 0, 1, 0.1, 0.1)
    monkeypatch.setattr(index_module, "index_archive", run)


def test_index_prints_the_report_summary(tmp_path, capsys, archive, fake_index):
    arch, acc = archive
    pl.DataFrame({"accession_number": [acc, "SECRET-ACC-3"], "report": ["a", "b"]}).write_csv(tmp_path / "r.csv")
    rc, out, err = _index(capsys, tmp_path, str(arch), "--reports", str(tmp_path / "r.csv"))
    keys = tmp_path / "data" / "cache" / UNMATCHED_KEYS_FILE
    assert rc == 0 and "indexed 1 studies" in out and "SECRET-ACC-3" not in out + err
    assert f"reports: 1 of 1 studies have a report; 0 without; 1 report rows matched no study (keys in {keys}" in out


def test_index_reports_matching_nothing_exit_1(tmp_path, capsys, archive, fake_index):
    arch, _ = archive
    pl.DataFrame({"accession_number": ["SECRET-ACC-4"], "report": ["b"]}).write_csv(tmp_path / "r.csv")
    rc, out, err = _index(capsys, tmp_path, str(arch), "--reports", str(tmp_path / "r.csv"))
    assert rc == 1 and "cmr index: none of the 1 report rows" in err and "indexed" not in out


@pytest.fixture(scope="module")
def index_data(tmp_path_factory):
    """An embedded index of make_rows() (sex F/M, vendors GE/Philips/Siemens, 1.5 and 3 T)."""
    data = tmp_path_factory.mktemp("filters") / "data"
    with Store.open(data, dim=32) as s:
        s.upsert_studies(make_rows(n=12))
    return data


@pytest.mark.parametrize("item, says", [
    ("sex=female", "filter sex=female can match nothing: the index holds only these sex values: F (6 studies), "
                   "M (6 studies). Use one of them, e.g. sex=F."),
    ("vendor=Canon", "filter vendor=Canon can match nothing: the index holds only these vendor values: GE (4"),
    ("views=lge_lax", "filter views=lge_lax can match nothing: the index holds only these views values: "),
    ("field_strength=2", "filter field_strength=2 can match nothing: the index holds only these field_strength "
                         "values: 1.5 (6 studies), 3 (6 studies)"),
])
def test_search_impossible_filter_value_exits_2(tmp_path, capsys, monkeypatch, index_data, item, says):
    monkeypatch.delenv("CMR_CHECKPOINT", raising=False)
    data = tmp_path / "data"
    shutil.copytree(index_data, data)                 # the embedded store is opened by one process at a time
    rc = search_cmd.main(["dilated LV", "--data", str(data), "--filter", item])
    out, err = capsys.readouterr()
    assert rc == 2 and not out and err.startswith("cmr search: ") and says in err

"""`cmr index --dicomweb`: against a real Orthanc (tests/helpers/orthanc.py), indexing a PACS gives the same
study keys and vectors as indexing the same studies from a folder; only the cine and LGE series are pulled;
a re-run pulls nothing; no UID in clear in what is staged; query filters, basic auth, a PACS that is down,
bad flags and the rate limit."""
from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests

from cmr_search.indexer.dicomweb import (DicomwebError, StudyQuery, ThrottledSession, connect, find_studies,
                                         pull_studies, session_from_env)
from cmr_search.indexer.scan import list_files, scan_archive
from cmr_search.indexer.series_typing import type_study
from cmr_search.ui.index_cmd import main
from tests.helpers.mr_files import write_mr
from tests.helpers.orthanc import ORTHANC_MISSING, Orthanc, free_port

needs_orthanc = pytest.mark.skipif(ORTHANC_MISSING is not None, reason=ORTHANC_MISSING or "")
N_STUDIES = 3
SALT = b"dicomweb-test-salt-0123456789abc"


def cmr_index(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# ---- the phantom archive, in a folder and in Orthanc -------------------------------------------------
@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from cmr_search.phantom.generate import generate_archive
    root = tmp_path_factory.mktemp("dicomweb")
    generate_archive(root / "arch", N_STUDIES, "tiny", seed=3, workers=1)
    return root


@pytest.fixture(scope="module")
def pacs(archive):
    with Orthanc(archive / "pacs") as server:
        files, _ = list_files(str(archive / "arch"))
        server.upload(files)
        yield server


@pytest.fixture(scope="module")
def runs(archive, pacs):
    """`cmr index` of the folder and of the PACS (same salt, model and reports), each into its own DATA."""
    common = ["--reports", archive / "arch" / "reports.csv", "--checkpoint", "cmr-tiny", "--untrained",
              "--salt-file", archive / "salt", "--no-progress", "--batch", 2]
    t0 = time.monotonic()
    folder = cmr_index(archive / "arch", "--data", archive / "folder", *common)
    t1 = time.monotonic()
    pulled = cmr_index(f"dicomweb+{pacs.dicomweb}", "--data", archive / "pacs-data", "--max-rps", 0, *common)
    t2 = time.monotonic()
    assert folder[0] == 0, folder
    assert pulled[0] == 0, pulled
    print(f"folder index {t1 - t0:.1f} s, DICOMweb pull + index {t2 - t1:.1f} s")
    return {"folder": archive / "folder", "pacs": archive / "pacs-data", "out": pulled[1], "err": pulled[2],
            "common": common}


def _points(data: Path) -> dict:
    from cmr_search.search import Store
    with Store.open(data=data) as s:
        return {h.key: h for h in s.scroll(vectors=True)}


def _arrays(data: Path) -> dict[str, dict[str, np.ndarray]]:
    from cmr_search.indexer.cache import load_arrays
    import polars as pl
    table = pl.read_parquet(data / "cache" / "studies.parquet")
    return {r["study_key"]: load_arrays(data / "cache", r["array_path"]) for r in table.iter_rows(named=True)}


@pytest.mark.slow
@needs_orthanc
def test_pacs_gives_the_same_keys_arrays_and_vectors_as_the_folder(runs):
    folder, pacs = _points(runs["folder"]), _points(runs["pacs"])
    assert len(folder) == N_STUDIES and sorted(pacs) == sorted(folder)
    for key, hit in folder.items():
        assert sorted(pacs[key].vectors) == sorted(hit.vectors), key
        for name, vec in hit.vectors.items():
            got = pacs[key].vectors[name]
            if hasattr(vec, "indices"):                      # sparse (report_terms): same words, weights
                assert list(got.indices) == list(vec.indices), f"{key} {name}"
                got, vec = got.values, vec.values
            np.testing.assert_allclose(np.asarray(got, float), np.asarray(vec, float), rtol=0, atol=1e-6,
                                       err_msg=f"{key} {name}")
    a, b = _arrays(runs["folder"]), _arrays(runs["pacs"])
    assert sorted(a) == sorted(b)
    for key in a:
        assert sorted(a[key]) == sorted(b[key])
        for view in a[key]:
            np.testing.assert_array_equal(a[key][view], b[key][view], err_msg=f"{key} {view}")
    assert f"{N_STUDIES} MR studies found, {N_STUDIES} pulled" in runs["out"]


@pytest.mark.slow
@needs_orthanc
def test_only_the_cine_and_lge_series_are_pulled(runs, archive):
    studies, _ = scan_archive(str(archive / "arch"))
    wanted, others = set(), set()
    for st in studies:
        for uid, t in type_study(st).items():
            (wanted if t.view.startswith(("cine_", "lge_")) else others).add(uid)
    staged = list((runs["pacs"] / "dicomweb" / "studies").rglob("*.dcm"))
    got = {pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID for f in staged}
    assert others, "the phantom has localizers / TI scouts: nothing would be left out"
    assert got == wanted
    assert len(staged) == sum(len(s.instances) for st in studies for s in st.series
                              if s.series_instance_uid in wanted)


@pytest.mark.slow
@needs_orthanc
def test_nothing_is_staged_or_logged_with_a_uid_in_clear(runs, archive):
    studies, _ = scan_archive(str(archive / "arch"))
    uids = {st.study_instance_uid for st in studies} | {s.series_instance_uid for st in studies for s in st.series}
    root = runs["pacs"] / "dicomweb"
    names = [str(p.relative_to(root)) for p in root.rglob("*")]
    text = (root / "pulled.jsonl").read_text() + runs["out"] + runs["err"] + "\n".join(names)
    assert not [u for u in uids if u in text]
    assert len((root / "pulled.jsonl").read_text().splitlines()) == N_STUDIES
    assert root.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o077 == 0 for p in root.rglob("*.dcm"))


@pytest.mark.slow
@needs_orthanc
def test_a_rerun_pulls_nothing_and_indexes_nothing(runs, pacs):
    staged = {p: p.stat().st_mtime_ns for p in (runs["pacs"] / "dicomweb" / "studies").rglob("*.dcm")}
    code, out, err = cmr_index("--dicomweb", pacs.dicomweb, "--data", runs["pacs"], *runs["common"])
    assert code == 0, err
    assert f"{N_STUDIES} MR studies found, 0 pulled (0 of 0 series, 0 files), {N_STUDIES} pulled before" in out
    assert f"indexed 0 studies, {N_STUDIES} already up to date" in out
    assert {p: p.stat().st_mtime_ns for p in staged} == staged


@pytest.mark.slow
@needs_orthanc
def test_a_killed_pull_resumes_with_the_study_it_was_on(runs, pacs, archive):
    """Killed after a study's files were in place but before its manifest line (and with another study
    half-written in partial/): the next run pulls that one study again and clears partial/."""
    root = runs["pacs"] / "dicomweb"
    lines = (root / "pulled.jsonl").read_text().splitlines()
    (root / "pulled.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    (root / "partial" / "0123456789abcdef0123" / "001").mkdir(parents=True)
    (root / "partial" / "0123456789abcdef0123" / "001" / "00001.dcm").write_bytes(b"half")
    salt = (archive / "salt").read_bytes()
    r = pull_studies(pacs.dicomweb, StudyQuery(), runs["pacs"], salt, progress=False)
    assert (r.n_found, r.n_pulled, r.n_skipped, r.errors) == (N_STUDIES, 1, N_STUDIES - 1, [])
    assert sorted(p.name for p in (root / "studies").iterdir()) == sorted(json.loads(x)["study_key"] for x in lines)
    assert not list((root / "partial").iterdir())


# ---- query filters, auth, failures: small hand-made studies ------------------------------------------
def _small_studies(folder: Path) -> list[Path]:
    """Three one-image MR studies: dates 2020-01-02, 2021-06-15, 2022-03-01; descriptions CARDIAC / BRAIN."""
    files = []
    for i, (date, desc) in enumerate([("20200102", "CARDIAC MR"), ("20210615", "CARDIAC STRESS"),
                                      ("20220301", "BRAIN")]):
        ds_path = write_mr(folder / f"s{i}.dcm", study=f"1.2.3.{i}", series=f"1.2.3.{i}.1")
        ds = pydicom.dcmread(ds_path)
        ds.StudyDate, ds.StudyDescription, ds.AccessionNumber = date, desc, f"A{i}"
        ds.save_as(ds_path, enforce_file_format=True)
        files.append(ds_path)
    return files


@pytest.fixture(scope="module")
def small_pacs(tmp_path_factory):
    if ORTHANC_MISSING:
        pytest.skip(ORTHANC_MISSING)
    root = tmp_path_factory.mktemp("small-pacs")
    with Orthanc(root / "pacs", users={"reader": "s3cret"}) as server:
        server.upload(_small_studies(root / "files"))
        yield server


AUTH = {"CMR_DICOMWEB_USER": "reader", "CMR_DICOMWEB_PASSWORD": "s3cret"}


@needs_orthanc
@pytest.mark.parametrize("query, n", [(StudyQuery(), 3), (StudyQuery(study_date="2021-06-15"), 1),
                                      (StudyQuery(since="2021-01-01"), 2), (StudyQuery(until="20210101"), 1),
                                      (StudyQuery(since="2020-01-01", until="2021-12-31"), 2),
                                      (StudyQuery(description="CARDIAC*"), 2),
                                      (StudyQuery(description="CARDIAC?STRESS"), 1)])
def test_query_filters(small_pacs, query, n):
    client, session = connect(small_pacs.dicomweb, AUTH)
    assert len(find_studies(client, session, query)) == n


@needs_orthanc
def test_basic_auth_comes_from_the_environment(small_pacs, tmp_path):
    with pytest.raises(DicomwebError, match=r"HTTP 401 .*credentials missing or refused"):
        pull_studies(small_pacs.dicomweb, StudyQuery(), tmp_path, SALT, environ={}, progress=False)
    with pytest.raises(DicomwebError, match="HTTP 401"):
        pull_studies(small_pacs.dicomweb, StudyQuery(), tmp_path, SALT, progress=False,
                     environ={**AUTH, "CMR_DICOMWEB_PASSWORD": "wrong"})
    r = pull_studies(small_pacs.dicomweb, StudyQuery(), tmp_path, SALT, environ=AUTH, progress=False)
    assert r.n_found == 3 and r.n_pulled == 0          # one image each: no cine, nothing worth pulling
    assert len(r.errors) == 3 and all("no cine or LGE series" in e.reason for e in r.errors)
    assert all(e.study and "1.2.3" not in e.study + e.reason for e in r.errors)


def test_a_pacs_that_is_down_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    t0 = time.monotonic()
    code, out, err = cmr_index("--dicomweb", url, "--data", tmp_path / "data", "--salt-file", tmp_path / "salt",
                               "--no-progress")
    assert code == 1
    assert f"cannot query the PACS at {url}: connection failed" in err
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "data" / "index").exists()


@pytest.mark.parametrize("argv, message", [
    (["--dicomweb", "http://pacs/dicom-web", "--since", "last week"], "--since 'last week': not a date"),
    (["--dicomweb", "http://pacs/dicom-web", "--since", "2024-02-01", "--until", "2024-01-01"], "is after"),
    (["--dicomweb", "http://pacs/dicom-web", "--study-date", "2024-01-01", "--since", "2023-01-01"], "not both"),
    (["--since", "2024-01-01"], "need --dicomweb"),
    (["dicomweb+ftp://pacs/x"], "expected http(s)://"),
    (["dicomweb+https://u:pw@pacs/x"], "no credentials in the URL"),
    (["dicomweb+http://pacs/x", "--dicomweb", "http://pacs/y"], "give the PACS once"),
])
def test_bad_flags_exit_2_before_any_work(tmp_path, argv, message):
    code, _, err = cmr_index(*argv, "--data", tmp_path / "data", "--salt-file", tmp_path / "salt")
    assert code == 2 and message in err, err
    assert not (tmp_path / "data").exists()


def test_credentials_from_the_environment():
    assert session_from_env({"CMR_DICOMWEB_TOKEN": "tok", **AUTH}).headers["Authorization"] == "Bearer tok"
    basic = session_from_env(AUTH)
    assert basic.auth == ("reader", "s3cret") and "Authorization" not in basic.headers
    assert session_from_env({}).auth is None
    with pytest.raises(DicomwebError, match="set both CMR_DICOMWEB_USER and CMR_DICOMWEB_PASSWORD"):
        session_from_env({"CMR_DICOMWEB_USER": "reader"})


def test_requests_are_rate_limited(monkeypatch):
    calls = []

    def fake(self, method, url, *a, **k):
        calls.append(time.monotonic())
        r = requests.Response()
        r.status_code = 200
        return r
    monkeypatch.setattr(requests.Session, "request", fake)
    session = ThrottledSession(max_rps=20)
    for _ in range(6):
        session.get("http://pacs/x")
    since_first = np.array(calls) - calls[0]             # request i starts no earlier than its slot i / 20 s
    assert len(calls) == 6 and (since_first >= np.arange(6) * 0.05 - 0.005).all(), since_first
    unlimited = ThrottledSession(max_rps=0)
    t0 = time.monotonic()
    for _ in range(6):
        unlimited.get("http://pacs/x")
    assert time.monotonic() - t0 < 0.05

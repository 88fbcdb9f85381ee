"""The pipeline: cache contents, keys only, incremental re-runs, kill -9 safety, CLI, Sunnybrook."""
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.helpers.dicom_fixtures import write_study
from cmr_search.indexer.prepare import month, prepare
from cmr_search.ui.prepare_cmd import main

REPO = Path(__file__).resolve().parents[2]
SUNNYBROOK = REPO.parent / "shared" / "data" / "sunnybrook-cine"


def _archive(root: Path, n: int) -> Path:
    studies = [write_study(root / "arch", f"s{i}", n_slices=5, n_phases=8, heart_slices=(1, 3)) for i in range(n)]
    rows = [{"accession_number": s["acc"], "report": f"FINDINGS: x\nIMPRESSION: Normal LV, EF 60%. "
             f"Jane Doe seen 2023-04-15, MRN {s['pid'][1:]}"} for s in studies]
    rows.append({"accession_number": "nobody", "report": "orphan"})
    pl.DataFrame(rows).write_csv(root / "reports.csv")
    return root / "arch"


def test_prepare_and_rerun(tmp_path):
    arch = _archive(tmp_path, 3)
    kw = dict(salt_file=tmp_path / "salt", progress=False)
    r = prepare(arch, tmp_path / "reports.csv", tmp_path / "c", **kw)
    t = r.studies
    assert (r.n_assembled, r.n_skipped, r.n_failed) == (3, 0, 0) and t.height == 3
    redacted = "Normal LV, EF 60%. [NAME] [NAME] seen [DATE], MRN [ID]"
    assert t["impression"].to_list() == [redacted] * 3
    assert t["study_date"].to_list() == ["2023-04"] * 3 and t["n_frames"].to_list() == [8] * 3
    errors = pl.read_parquet(tmp_path / "c" / "errors.parquet")
    assert errors["stage"].to_list() == ["report"]                     # the orphan report
    link = pl.read_parquet(tmp_path / "c" / "link.parquet")
    raw = set(link["study_instance_uid"]) | set(link["accession_number"])
    cells = {str(v) for row in t.drop("views").iter_rows() for v in row}
    assert not {x for x in raw if x} & cells                          # raw identifiers only in link.parquet
    r2 = prepare(arch, tmp_path / "reports.csv", tmp_path / "c", **kw)
    assert (r2.n_assembled, r2.n_skipped) == (0, 3)
    f = next((arch / "s1").glob("sax_00_00.dcm"))
    os.utime(f, ns=(time.time_ns(), time.time_ns()))
    r3 = prepare(arch, tmp_path / "reports.csv", tmp_path / "c", **kw)
    assert (r3.n_assembled, r3.n_skipped) == (1, 2) and r3.studies.height == 3


def test_bad_file_does_not_stop_the_run(tmp_path):
    arch = _archive(tmp_path, 2)
    (arch / "s0" / "junk.dcm").write_bytes(b"not dicom at all" * 10)
    code = main([str(arch), "--reports", str(tmp_path / "reports.csv"), "--out", str(tmp_path / "c"),
                 "--salt-file", str(tmp_path / "salt"), "--no-progress", "--workers", "2"])
    assert code == 0 and pl.read_parquet(tmp_path / "c" / "studies.parquet").height == 2
    assert "scan" in pl.read_parquet(tmp_path / "c" / "errors.parquet")["stage"].to_list()
    assert main(["/nonexistent"]) == 2


N_KILL = 16


@pytest.mark.slow
def test_kill_and_rerun_matches_clean_run(tmp_path):
    arch = _archive(tmp_path, N_KILL)     # enough studies that the run is still going at the first flush
    code = (f"import sys; from cmr_search.indexer.prepare import prepare; "
            f"prepare({str(arch)!r}, {str(tmp_path / 'reports.csv')!r}, sys.argv[1], "
            f"salt_file={str(tmp_path / 'salt')!r}, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "killed")])
    parts = tmp_path / "killed" / "parts"
    deadline = time.time() + 60
    while time.time() < deadline and not list(parts.glob("studies-*.parquet")):
        try:
            proc.wait(timeout=0.01)              # wait on the process: it may finish before the first flush
            break
        except subprocess.TimeoutExpired:
            pass
    killed_mid_run = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = prepare(arch, tmp_path / "reports.csv", tmp_path / "killed", salt_file=tmp_path / "salt", progress=False)
    clean = prepare(arch, tmp_path / "reports.csv", tmp_path / "clean", salt_file=tmp_path / "salt", progress=False)
    assert killed_mid_run and r.n_skipped >= 1
    cols = ["study_key", "source_fingerprint", "impression", "views"]
    assert r.studies.select(cols).sort("study_key").equals(clean.studies.select(cols).sort("study_key"))
    assert r.studies.height == N_KILL and r.studies["study_key"].n_unique() == N_KILL
    for rel in clean.studies["array_path"]:
        a, b = (np.load(tmp_path / d / rel) for d in ("killed", "clean"))
        assert all(np.array_equal(a[k], b[k]) for k in b.files)


def test_month():
    assert month("20230415") == "2023-04" and month("20120000") is None and month("") is None


@pytest.mark.skipif(not SUNNYBROOK.exists(), reason=f"real data {SUNNYBROOK} absent (needs /work/shared)")
@pytest.mark.slow
def test_sunnybrook_acceptance(tmp_path):
    warnings.simplefilter("ignore")
    r = prepare(SUNNYBROOK, None, tmp_path / "c", workers=2, salt_file=tmp_path / "salt", progress=False)
    assert r.n_failed == 0 and r.n_errors == 0
    assert sorted(r.studies["sax_slices"]) == [10, 11, 11, 12, 13]
    assert set(r.studies["n_frames"]) == {20} and set(map(tuple, r.studies["views"])) == {("cine_sax",)}
    link = pl.read_parquet(tmp_path / "c" / "link.parquet")
    assert link.height == 5 and "SCD" not in "".join(r.studies["patient_key"])

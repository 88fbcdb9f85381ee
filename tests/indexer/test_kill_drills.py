"""kill -9 drills of `cmr prepare` and `cmr index` (issue 7): 10 seeded trials each on a small SYNTHETIC
phantom archive. Each trial SIGKILLs the command's process group at a random point (kill_drill.py), checks
that what the kill left is never corrupt, re-runs the same command and checks the result equals one clean
run: the same studies, no duplicates, no orphan or temp files, every array decodes, every point is there.
A failing trial names its seed and kill point; replay it with CMR_DRILL_SEED=<seed>.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.helpers.kill_drill import TRIALS, Job, drill_seed, kill_at, trial_rng

N_STUDIES = 8


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The SYNTHETIC archive and one clean `cmr prepare` + `cmr index` of it (in-process)."""
    from cmr_search.phantom.generate import generate_archive
    from cmr_search.ui.index_cmd import main as index_main
    from cmr_search.ui.prepare_cmd import main as prepare_main
    root = tmp_path_factory.mktemp("drills")
    generate_archive(root / "arch", N_STUDIES, "tiny", seed=5, workers=1)
    salt = root / "salt"
    assert prepare_main([str(root / "arch"), "--out", str(root / "clean" / "cache"), "--salt-file", str(salt),
                         "--no-progress"]) == 0
    assert index_main(_index_args(root / "clean") + ["--no-progress"]) == 0
    return {"root": root, "arch": root / "arch", "salt": salt, "data": root / "clean",
            "studies": pl.read_parquet(root / "clean" / "cache" / "studies.parquet"),
            "vectors": _vectors(root / "clean")}


def _prepare_args(clean, out: Path, workers: int) -> list[str]:
    return [str(clean["arch"]), "--out", str(out), "--salt-file", str(clean["salt"]), "--no-progress",
            "--workers", str(workers)]


def _index_args(data: Path) -> list[str]:
    return ["--data", str(data), "--checkpoint", "cmr-tiny", "--untrained", "--batch", "1"]


def _vectors(data: Path) -> dict[str, list[float]]:
    from cmr_search.search import Store
    with Store.open(data=data) as s:
        hits = list(s.scroll(vectors=["study"]))
    keys = [h.key for h in hits]
    assert len(keys) == len(set(keys)), "duplicate study keys in the index"
    return {h.key: h.vectors["study"] for h in hits}


def _temps(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tmp"))


def _decode(npz: Path) -> None:
    with np.load(npz) as z:
        for k in z.files:
            assert np.isfinite(z[k].astype(np.float32)).all(), f"{npz.name}/{k}"


# ---- cmr prepare --------------------------------------------------------------------------------------
def _check_killed_cache(cache: Path, where: str) -> None:
    """What a kill leaves: every visible array decodes; every row (merged or in a part) has its arrays."""
    for npz in (cache / "arrays").glob("*.npz") if (cache / "arrays").is_dir() else ():
        _decode(npz)
    tables = [cache / "studies.parquet", *sorted((cache / "parts").glob("studies-*.parquet"))]
    for t in (t for t in tables if t.exists()):
        df = pl.read_parquet(t)
        assert df["study_key"].n_unique() == df.height, f"{t.name}: duplicate keys; {where}"
        for rel in df["array_path"]:
            assert (cache / rel).is_file(), f"{t.name} references missing {rel}; {where}"


def _check_complete_cache(cache: Path, clean, where: str) -> None:
    want = clean["studies"]
    got = pl.read_parquet(cache / "studies.parquet")
    assert got.height == N_STUDIES and got["study_key"].n_unique() == N_STUDIES, where
    cols = ["study_key", "source_fingerprint", "impression", "views", "array_path"]
    assert got.select(cols).sort("study_key").equals(want.select(cols).sort("study_key")), where
    arrays = sorted(p.name for p in (cache / "arrays").iterdir())
    assert arrays == sorted(Path(r).name for r in got["array_path"]), f"orphan or missing arrays; {where}"
    assert not list((cache / "parts").iterdir()) and not _temps(cache), f"leftovers {_temps(cache)}; {where}"
    link = pl.read_parquet(cache / "link.parquet")
    assert sorted(link["study_key"]) == sorted(got["study_key"]), where
    for rel in got["array_path"]:
        with np.load(cache / rel) as a, np.load(clean["data"] / "cache" / rel) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in b.files), f"{rel}; {where}"


@pytest.mark.slow
def test_kill_prepare_drill(clean):
    from cmr_search.ui.prepare_cmd import main as prepare_main
    mid_run = 0
    for trial in range(TRIALS):
        rng = trial_rng("prepare", trial)
        out = clean["root"] / f"prepare-{trial}" / "cache"
        args = _prepare_args(clean, out, workers=1 + trial % 2)
        job = Job(["prepare", *args])
        point = kill_at(job, rng, lambda: len(list((out / "arrays").glob("*.npz"))), N_STUDIES, 4.0)
        where = f"seed {drill_seed()} trial {trial} ({args[-1]} workers): kill at {point}"
        mid_run += "mid-run" in point
        print(where.splitlines()[0])                 # shown by pytest when a trial fails
        _check_killed_cache(out, where)
        assert prepare_main(args) == 0, where
        _check_complete_cache(out, clean, where)
    assert mid_run >= TRIALS // 3, f"only {mid_run} of {TRIALS} kills landed mid-run"


# ---- cmr index ----------------------------------------------------------------------------------------
def _upserted(job: Job) -> int:
    return sum(line.startswith("index: ") and "upserted" in line for line in job.lines)


def _check_killed_index(data: Path, where: str) -> None:
    """A killed index opens (WAL replay) with one point per key, or is not there yet."""
    from cmr_search.search.errors import IndexMissingError
    try:
        _vectors(data)
    except IndexMissingError:
        pass                                       # killed before the collection was created
    except Exception as e:
        raise AssertionError(f"the killed index does not open cleanly: {e}; {where}") from e


def _check_complete_index(data: Path, clean, where: str) -> None:
    got, want = _vectors(data), clean["vectors"]
    assert len(got) == len(want) == N_STUDIES and set(got) == set(want), where
    for k in want:
        assert np.allclose(got[k], want[k], atol=1e-5), f"study vector of {k} differs; {where}"
    link = pl.read_parquet(data / "link.parquet")
    assert link.height == N_STUDIES and sorted(link["study_key"]) == sorted(want), where
    assert not _temps(data) and not (data / "index" / "cmr_studies.lock").exists(), where


@pytest.mark.slow
def test_kill_index_drill(clean):
    from cmr_search.ui.index_cmd import main as index_main
    mid_run = 0
    for trial in range(TRIALS):
        rng = trial_rng("index", trial)
        data = clean["root"] / f"index-{trial}"
        shutil.copytree(clean["data"] / "cache", data / "cache")
        job = Job(["index", *_index_args(data)])
        point = kill_at(job, rng, lambda: _upserted(job), N_STUDIES, 15.0)
        where = f"seed {drill_seed()} trial {trial}: kill at {point}\n{job.tail()}"
        mid_run += "mid-run" in point
        print(where.splitlines()[0])                 # shown by pytest when a trial fails
        _check_killed_index(data, where)
        assert index_main(_index_args(data) + ["--no-progress"]) == 0, where
        _check_complete_index(data, clean, where)
    assert mid_run >= TRIALS // 3, f"only {mid_run} of {TRIALS} kills landed mid-run"

"""File modes (docs/privacy.md, "File modes"; search/private_files.py): with the common umask 022, `cmr index`
on a tiny synthetic archive and the cohort exports leave what holds identifiers or keys readable by its owner
only: the link tables, the cache's tables and part files, the salt, the audit log and the exports 0600; a new
data folder, its cache and part folders 0700. A folder that exists already and a replaced file keep their
modes (a team may chmod them)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import polars as pl
import pytest

from cmr_search.indexer.cache import LINK_COLUMNS, CacheWriter
from cmr_search.search.private_files import private_dir, write_private
from cmr_search.ui.cli import main

N_STUDIES = 2


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from cmr_search.phantom.generate import generate_archive
    arch = tmp_path_factory.mktemp("modes") / "arch"
    generate_archive(arch, N_STUDIES, "tiny", seed=3, workers=1)
    return arch


def test_index_and_exports_are_private_whatever_the_umask(archive, tmp_path, umask_022, monkeypatch):
    from cmr_search.indexer.index import index_archive
    from cmr_search.indexer.model_source import fresh_model
    monkeypatch.delenv("CMR_AUDIT", raising=False)               # the default: on
    data, salt = tmp_path / "data", tmp_path / "keys" / "salt.key"
    r = index_archive(archive, archive / "reports.csv", data, model=fresh_model(), salt_file=salt,
                      progress=False, segmenter=False)
    assert r.n_indexed == N_STUDIES
    out = tmp_path / "out"                                        # an --out folder the user made
    out.mkdir()
    assert main(["cohort", "export", "--query", "normal heart", "--k", "2", "--data", str(data),
                 "--out", str(out / "c.csv")]) == 0
    assert main(["cohort", "run", str(_definition(tmp_path)), "--data", str(data), "--out",
                 str(out / "r.parquet")]) == 0
    cache = data / "cache"
    files = [data / "link.parquet", cache / "link.parquet", cache / "studies.parquet", cache / "errors.parquet",
             salt, data / "audit.jsonl", out / "c.csv", out / "c.cohort.json", out / "r.parquet",
             out / "r.attrition.csv", out / "r.result.json"]
    assert {str(f.relative_to(tmp_path)): oct(mode(f)) for f in files} == {
        str(f.relative_to(tmp_path)): oct(0o600) for f in files}
    assert all(mode(f) == 0o600 for f in (cache / "arrays").iterdir())
    folders = [data, cache, cache / "parts", cache / "arrays", salt.parent]
    assert {str(d.relative_to(tmp_path)): oct(mode(d)) for d in folders} == {
        str(d.relative_to(tmp_path)): oct(0o700) for d in folders}
    assert mode(out) == 0o755                                     # the user's folder: left as it was


def _definition(tmp_path: Path) -> Path:
    f = tmp_path / "all.cohort.json"
    f.write_text('{"name": "all", "inclusion": [{"filter": ["age=0..120"]}]}')
    return f


def test_part_files_of_a_run_are_private(tmp_path, umask_022):
    writer = CacheWriter(tmp_path / "new" / "cache")
    writer.add_study({"study_key": "k1", "source_fingerprint": "f", "array_path": "arrays/k1.npz"},
                     {c: "1.2.3" for c in LINK_COLUMNS})
    writer.flush()
    parts = sorted(writer.folder.parts.glob("*.parquet"))
    assert [p.name.split("-")[0] for p in parts] == ["link", "studies"]
    assert {mode(p) for p in parts} == {0o600}
    assert {mode(d) for d in (tmp_path / "new", writer.out, writer.folder.parts, writer.folder.arrays)} == {0o700}


def test_existing_folders_and_replaced_files_keep_their_modes(tmp_path, umask_022):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o770)
    os.chmod(shared, 0o770)
    assert private_dir(shared / "a" / "b") == shared / "a" / "b"
    assert (mode(shared), mode(shared / "a"), mode(shared / "a" / "b")) == (0o770, 0o700, 0o700)
    f = write_private(shared / "t.parquet", lambda p: pl.DataFrame({"x": [1]}).write_parquet(p))
    assert mode(f) == 0o600 and pl.read_parquet(f)["x"].to_list() == [1]
    os.chmod(f, 0o640)                                            # a team's choice
    write_private(f, b"new")
    assert mode(f) == 0o640 and f.read_bytes() == b"new"
    assert not [p for p in shared.iterdir() if p.name.endswith(".tmp")]

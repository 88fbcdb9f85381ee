"""Damaged index files on start (issue 7): truncate, overwrite with garbage or delete files of the embedded
Qdrant store under DATA/index and of what the store keeps beside it (the check file, DATA/model), then
open with `search.connect(data=...)` and run `cmr search`. Expected every time: IndexCorruptError / exit 1
with one line naming the folder and the rebuild command, never a silent short result, never a traceback;
`cmr index --data DATA --rebuild` brings the index back from the study cache. A clean close, a reopen and
a copy (even one that changes file times) are never called damaged.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.helpers.cache_helpers import make_fake_cache  # noqa: E402

N_STUDIES = 12
QUERY = "septal hypertrophy"


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_model):
    """DATA (cache + index + model) of a small fake cache, indexed once; tests copy it."""
    from cmr_search.indexer.index import index_archive
    from cmr_search.model import save_checkpoint
    root = tmp_path_factory.mktemp("corrupt")
    cache = make_fake_cache(root / "data" / "cache", n=N_STUDIES)
    studies = pl.read_parquet(cache / "studies.parquet")
    studies.with_columns(source_fingerprint=pl.col("study_key")).write_parquet(cache / "studies.parquet")
    index_archive(None, None, root / "data", model=tiny_model, progress=False)
    save_checkpoint(tiny_model, root / "ckpt")
    return root


@pytest.fixture
def data(template, tmp_path):
    shutil.copytree(template / "data", tmp_path / "data")
    return tmp_path / "data"


def _segment(data: Path) -> Path:
    return next((data / "index" / "cmr_studies" / "segments").iterdir())


def _garble(f: Path) -> None:
    f.write_bytes(os.urandom(max(64, f.stat().st_size)))


def _truncate(f: Path) -> None:
    with open(f, "r+b") as fh:
        fh.truncate(16)


DAMAGE = {   # what a disk fault, a bad copy or a stray `rm` does to the files
    "vectors truncated": lambda d: _truncate(_segment(d) / "vector_storage-study" / "vectors" / "chunk_0.mmap"),
    "vectors garbage": lambda d: _garble(_segment(d) / "vector_storage-study" / "vectors" / "chunk_0.mmap"),
    "payload garbage": lambda d: _garble(_segment(d) / "payload_storage" / "page_0.dat"),
    "id tracker deleted": lambda d: (_segment(d) / "mutable_id_tracker.mappings").unlink(),
    "segment deleted": lambda d: shutil.rmtree(_segment(d)),
    "wal garbage": lambda d: [_garble(f) for f in (d / "index" / "cmr_studies" / "wal").glob("open-*")],
    "config garbage": lambda d: (d / "index" / "cmr_studies" / "edge_config.json").write_text("{not json"),
    "config deleted": lambda d: (d / "index" / "cmr_studies" / "edge_config.json").unlink(),
    "check file garbage": lambda d: (d / "index" / "cmr_studies.check").write_text("\x00garbage"),
    "model weights truncated": lambda d: _truncate(d / "model" / "model.safetensors"),
    "model config garbage": lambda d: (d / "model" / "config.json").write_text("{"),
}


def _says_rebuild(text: str, data: Path) -> None:
    assert "damaged" in text and f"cmr index --data {data} --rebuild" in text, text
    assert "Traceback" not in text, text


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_connect_and_cmr_search_say_rebuild(data, capsys, damage):
    from cmr_search.search import connect
    from cmr_search.search.errors import IndexCorruptError
    from cmr_search.ui.search_cmd import main as search_main
    DAMAGE[damage](data)
    with pytest.raises(IndexCorruptError) as err:
        with connect(data=data) as c:
            c.search(QUERY, k=5)
    _says_rebuild(str(err.value), data)
    capsys.readouterr()
    assert search_main([QUERY, "--data", str(data)]) == 1
    out, text = capsys.readouterr()
    lines = [x for x in text.splitlines() if x.startswith("cmr search:")]   # (transformers may draw a bar)
    assert out == "" and len(lines) == 1, text
    _says_rebuild(text, data)


def _mark_killed(data: Path, points: int | None = None) -> None:
    """The check file as a killed session leaves it: open, not clean (no file fingerprints to compare)."""
    check = json.loads((data / "index" / "cmr_studies.check").read_text())
    (data / "index" / "cmr_studies.check").write_text(json.dumps(
        {"points": check["points"] if points is None else points, "clean": False}))


@pytest.mark.parametrize("damage", ["vectors truncated", "payload garbage"])
def test_damage_after_a_kill_fails_on_the_first_read(data, tiny_model, damage):
    from cmr_search.search import connect
    from cmr_search.search.errors import IndexCorruptError
    _mark_killed(data)
    DAMAGE[damage](data)
    with pytest.raises(IndexCorruptError) as err:
        with connect(data=data, model=tiny_model) as c:
            c.search(QUERY, k=5)
            list(c.store.scroll(vectors=True))
    _says_rebuild(str(err.value), data)


def test_fewer_points_than_the_last_flush_counted_is_damage(data):
    from cmr_search.search import Store
    from cmr_search.search.errors import IndexCorruptError
    _mark_killed(data, points=N_STUDIES + 5)       # points the last flush saw have gone missing
    with pytest.raises(IndexCorruptError, match=f"{N_STUDIES + 5} points were stored, only {N_STUDIES}"):
        Store.open(data=data)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["segment deleted", "model weights truncated"])
def test_rebuild_from_the_cache_brings_it_back(data, template, capsys, damage):
    from cmr_search.search import connect
    from cmr_search.ui.index_cmd import main as index_main
    DAMAGE[damage](data)
    assert index_main(["--data", str(data), "--rebuild", "--checkpoint", str(template / "ckpt"),
                       "--no-progress"]) == 0
    with connect(data=data) as c:
        assert c.store.count() == N_STUDIES and c.search(QUERY, k=N_STUDIES).height == N_STUDIES


def test_clean_reopen_and_copies_are_not_damage(data, tmp_path):
    from cmr_search.search import Store
    for _ in range(2):
        with Store.open(data=data) as s:
            assert s.count() == N_STUDIES
    copy = tmp_path / "copy"                                    # cp without -p: new file times, same bytes
    shutil.copytree(data, copy, copy_function=shutil.copyfile)
    with Store.open(data=copy) as s:
        assert s.count() == N_STUDIES


def test_a_killed_create_leaves_no_half_made_collection(tmp_path, monkeypatch):
    import qdrant_edge as qe

    from cmr_search.search import Store
    from cmr_search.search.collection import PAYLOAD_INDEXES
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "index" / f".cmr_studies.creating.{dead}").mkdir(parents=True)   # left by a killed create
    calls = []

    def crash(field, schema):                                   # the process dies after two indexes
        calls.append(field)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(field, schema)
    real = qe.UpdateOperation.create_field_index
    monkeypatch.setattr(qe.UpdateOperation, "create_field_index", crash)
    with pytest.raises(KeyboardInterrupt):
        Store.open(data=tmp_path, dim=8)
    assert not (tmp_path / "index" / "cmr_studies").exists()   # nothing half-made under the real name
    monkeypatch.undo()
    with Store.open(data=tmp_path, dim=8) as s:
        assert set(s.backend.shard.info().payload_schema) == set(PAYLOAD_INDEXES)
    assert not [p.name for p in (tmp_path / "index").iterdir() if "creating" in p.name]

"""`cmr index`: one point per study, idempotent re-runs, shards, missing LGE, kill -9 resume, push."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
N_STUDIES = 12


class _KeepOpen:
    """qdrant-client ':memory:' (the server stand-in) outlives Store.close, so runs can share it."""

    def __new__(cls):
        from qdrant_client import QdrantClient

        class Client(QdrantClient):
            def close(self, **kw):
                pass
        return Client(":memory:")


def _drop_lge(study_dir: Path) -> None:
    """Remove the inversion-recovery series (LGE, TI scout) of one study: a study without LGE."""
    import pydicom
    for series in [p for p in study_dir.iterdir() if p.is_dir() and p.name != "labels"]:
        first = next(series.rglob("*.dcm"), None) or next((f for f in series.rglob("*") if f.is_file()), None)
        if first is not None and "InversionTime" in pydicom.dcmread(first, stop_before_pixels=True):
            shutil.rmtree(series)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from cmr_search.phantom.generate import generate_archive
    root = tmp_path_factory.mktemp("index")
    arch = root / "arch"
    generate_archive(arch, N_STUDIES, "tiny", seed=3, workers=1)
    no_lge = sorted(p for p in arch.iterdir() if p.is_dir())[0]
    _drop_lge(no_lge)
    return {"arch": arch, "reports": arch / "reports.csv", "salt": root / "salt", "root": root}


@pytest.fixture(scope="module")
def model():
    import torch

    from cmr_search.indexer.model_source import fresh_model
    torch.set_num_threads(2)
    return fresh_model()


@pytest.fixture(scope="module")
def indexed(archive, model):
    """One clean run into an embedded store."""
    from cmr_search.indexer.index import index_archive
    data = archive["root"] / "full"
    r = index_archive(archive["arch"], archive["reports"], data, model=model, batch=5,
                      salt_file=archive["salt"], progress=False)
    return data, r


def _count(data: Path) -> int:
    from cmr_search.search import Store
    with Store.open(data=data) as s:
        return s.count()


def test_one_point_per_study_and_payload(indexed, model):
    from cmr_search.search import Store
    from cmr_search.search.collection import FORBIDDEN, model_id
    data, r = indexed
    assert (r.n_studies, r.n_indexed, r.n_skipped, r.n_points) == (N_STUDIES, N_STUDIES, 0, N_STUDIES)
    assert r.model_id == model_id(model)
    with Store.open(data=data) as s:
        hits = list(s.scroll(vectors=True))
    assert len(hits) == N_STUDIES
    for h in hits:
        p = h.payload
        for field in ("study_key", "patient_key", "age", "sex", "study_date", "manufacturer", "model_name",
                      "field_strength", "views", "n_frames", "impression", "model_id", "indexed_at", "qa",
                      "label"):
            assert field in p, field
        assert not set(FORBIDDEN) & set(p)                       # raw identifiers stay in link.parquet
        assert {"study", "cine", "report", "report_text", "report_clauses", "report_terms"} <= set(h.vectors)
        assert len(h.vectors["report_text"]) == 384 and all(len(c) == 384 for c in h.vectors["report_clauses"])
        assert ("lge" in h.vectors) == any(v.startswith("lge") for v in p["views"])
    assert sum("lge" not in h.vectors for h in hits) == 1        # the study whose LGE series were removed
    link = pl.read_parquet(data / "link.parquet")
    assert sorted(link["study_key"]) == sorted(h.key for h in hits)
    assert (data / "model" / "model.safetensors").exists()       # the weights `search` will load


def test_rerun_adds_nothing(indexed, archive, model):
    from cmr_search.indexer.index import index_archive
    data, _ = indexed
    r = index_archive(archive["arch"], archive["reports"], data, model=model, salt_file=archive["salt"],
                      progress=False)
    assert (r.n_indexed, r.n_skipped, r.n_points) == (0, N_STUDIES, N_STUDIES)


def test_rebuild_reindexes_everything(indexed, model, tmp_path):
    from cmr_search.indexer.index import index_archive
    data = tmp_path / "rb"
    shutil.copytree(indexed[0] / "cache", data / "cache")        # index an existing cache (no archive)
    first = index_archive(None, None, data, model=model, progress=False)
    again = index_archive(None, None, data, model=model, progress=False, rebuild=True)
    assert first.n_indexed == again.n_indexed == again.n_points == N_STUDIES and again.n_skipped == 0


def test_an_index_made_before_report_text_is_kept_and_warned_about(indexed, model, tmp_path):
    from cmr_search.indexer.index import index_archive
    from cmr_search.search import Store
    data = tmp_path / "old"
    shutil.copytree(indexed[0] / "cache", data / "cache")
    Store.open(data=data, dim=model.embed_dim, text_dim=None).close()        # the layout of an older version
    with pytest.warns(UserWarning, match="made before report-text search.*--rebuild"):
        r = index_archive(None, None, data, model=model, progress=False)
    assert r.n_points == N_STUDIES
    with Store.open(data=data) as s:
        assert not s.has_report_text
        assert all(set(h.vectors) <= {"study", "cine", "lge", "report"} for h in s.scroll(vectors=True))


def test_search_finds_indexed_studies(indexed, model):
    from cmr_search.search import connect
    data, _ = indexed
    with connect(data, model=model) as c:
        top = c.search("late gadolinium enhancement", k=5)
        rep = c.search("left ventricle", k=3, mode="report")
    assert top.height == 5 and rep.height == 3


def test_shards_split_the_archive(archive, model):
    from cmr_search.indexer.index import index_archive
    from cmr_search.indexer.shards import in_shard
    client = _KeepOpen()
    data = archive["root"] / "shards"
    results = [index_archive(archive["arch"], archive["reports"], data, model=model, shard=(i, 2),
                             client=client, salt_file=archive["salt"], progress=False) for i in (0, 1)]
    assert sum(r.n_indexed for r in results) == N_STUDIES and 0 < results[0].n_indexed < N_STUDIES
    assert results[1].n_points == N_STUDIES
    from cmr_search.search import Store
    store = Store.open(client=client)
    assert store.count() == N_STUDIES
    keys = [h.key for h in store.scroll()]
    assert sorted(keys) == sorted(pl.read_parquet(data / "link.parquet")["study_key"])
    assert all(in_shard(k, (0, 2)) != in_shard(k, (1, 2)) for k in keys)


def test_push_to_server(indexed):
    from cmr_search.indexer.index import push
    from cmr_search.search import Store
    data, _ = indexed
    client = _KeepOpen()
    assert push(data, client=client, batch=5, progress=False) == N_STUDIES
    with Store.open(data=data) as src:
        want = {h.id: h for h in src.scroll(vectors=True)}
    got = {h.id: h for h in Store.open(client=client).scroll(vectors=True)}
    assert set(got) == set(want)
    k = next(iter(want))
    assert got[k].payload["study_key"] == want[k].payload["study_key"]
    assert set(got[k].vectors) == set(want[k].vectors) >= {"report_clauses", "report_terms"}
    assert got[k].vectors["report_terms"] == want[k].vectors["report_terms"]


def test_cli_usage_errors(tmp_path, capsys, monkeypatch):
    from cmr_search.ui.index_cmd import main
    monkeypatch.delenv("QDRANT_URL", raising=False)
    assert main(["--help"]) == 0
    assert main([str(tmp_path / "missing")]) == 2
    assert main([str(tmp_path), "--shard", "2/2"]) == 2
    assert main(["push", "--data", str(tmp_path)]) == 2                     # no --url
    assert main(["--data", str(tmp_path / "empty"), "--no-progress"]) == 1    # no cache, no archive
    assert "no study cache" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_count(archive, model, tmp_path):
    """SIGKILL `cmr index` after its first batch is upserted; the re-run completes the index without
    re-embedding what was already written (the embedded store's WAL survived the kill)."""
    from cmr_search.indexer.index import index_archive
    data = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "cmr_search.ui.cli", "index", str(archive["arch"]), "--reports", str(archive["reports"]),
           "--data", str(data), "--batch", "2", "--checkpoint", "cmr-tiny", "--untrained", "--salt-file", str(archive["salt"])]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    deadline, seen = time.monotonic() + 600, []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("index: ") and "upserted" in line:
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen[-20:])
    finally:
        proc.kill()
        proc.wait()
    assert any("upserted" in s for s in seen), "".join(seen[-20:])
    assert proc.returncode == -signal.SIGKILL
    r = index_archive(archive["arch"], archive["reports"], data, model=model, salt_file=archive["salt"],
                      progress=False)
    assert r.n_skipped >= 2                          # the first batch survived the kill, same model_id
    assert r.n_points == _count(data) == N_STUDIES


def test_payload_findings_come_from_the_cache_or_from_the_impression():
    from cmr_search.indexer.payload import payload_row
    row = {"study_key": "k1", "impression": "Possible apical HCM. No LGE. Mild LV dilatation.", "views": []}
    assert payload_row(row, {}, "m:0")["report_findings"] == ["HCM:uncertain", "LGE:negated", "LV_DILATATION:affirmed"]
    row["report_findings"] = ["AMYLOID:affirmed"]                   # read from the whole report by `cmr prepare`
    assert payload_row(row, {}, "m:0")["report_findings"] == ["AMYLOID:affirmed"]

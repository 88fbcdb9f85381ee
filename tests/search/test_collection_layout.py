"""Collection layout options (search.collection.CollectionOptions): shards and replicas reach the server's
create_collection, int8 quantization reaches both backends' collection config and still finds the same
neighbours, and `cmr index --shards/--replicas/--quantize` carries them; no server is needed (qdrant-client's
local mode stands in, with create_collection spied on)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from qdrant_client import QdrantClient

from cmr_search.search import Store
from cmr_search.search.collection import CollectionOptions
from cmr_search.search.errors import CollectionOptionsError
from tests.helpers.search_helpers import make_rows


class SpyClient(QdrantClient):
    """Local mode that records what create_collection was asked."""

    def __init__(self):
        super().__init__(":memory:")
        self.created: list[dict] = []

    def create_collection(self, collection_name, **kw):
        self.created.append(kw)
        return super().create_collection(collection_name, **kw)


def test_shards_replicas_and_int8_reach_create_collection():
    spy = SpyClient()
    with Store.open(client=spy, dim=32, options=CollectionOptions(quantize=True, shards=6, replicas=2)) as s:
        s.upsert_studies(make_rows(n=10))
        assert s.count() == 10
    (kw,) = spy.created
    assert kw["shard_number"] == 6 and kw["replication_factor"] == 2
    scalar = kw["quantization_config"].scalar
    assert scalar.type.value == "int8" and scalar.always_ram is True
    assert all(p.on_disk for p in kw["vectors_config"].values())          # float32 originals on disk
    assert set(kw["vectors_config"]) == {"study", "cine", "lge", "report", "report_text", "report_clauses"}
    assert kw["sparse_vectors_config"]["report_terms"].modifier.value == "idf"
    assert kw["vectors_config"]["report_text"].size == 384
    assert kw["vectors_config"]["report_clauses"].multivector_config.comparator.value == "max_sim"
    assert kw["vectors_config"]["report"].multivector_config is None


def test_default_layout_sets_nothing_extra():
    spy = SpyClient()
    Store.open(client=spy, dim=32).close()
    (kw,) = spy.created
    assert not {"shard_number", "replication_factor", "quantization_config"} & set(kw)
    assert not any(p.on_disk for p in kw["vectors_config"].values())


def test_an_existing_collection_keeps_its_layout():
    spy = SpyClient()
    Store.open(client=spy, dim=32)                     # not closed: closing closes the local-mode client
    with Store.open(client=spy, dim=32, options=CollectionOptions(shards=3)) as again:
        assert again.dim == 32
    assert len(spy.created) == 1


def test_embedded_int8_collection_finds_the_same_neighbours(tmp_path):
    rows = make_rows(n=60)
    with Store.open(tmp_path / "plain", dim=32) as plain, \
            Store.open(tmp_path / "int8", dim=32, options=CollectionOptions(quantize=True)) as q:
        plain.upsert_studies(rows)
        q.upsert_studies(rows)
        for r in rows[:10]:
            want = [h.key for h in plain.nearest(r["vectors"]["study"], limit=5)]
            got = [h.key for h in q.nearest(r["vectors"]["study"], limit=5)]
            assert got[0] == want[0] == r["study_key"] and set(got) == set(want)
    cfg = json.loads((tmp_path / "int8" / "index" / "cmr_studies" / "edge_config.json").read_text())
    assert cfg["quantization_config"]["scalar"]["type"] == "int8"
    assert {v["memory"] for v in cfg["vectors"].values()} == {"cold"}
    plain_cfg = json.loads((tmp_path / "plain" / "index" / "cmr_studies" / "edge_config.json").read_text())
    assert not plain_cfg.get("quantization_config")


@pytest.mark.parametrize("kw", [{"shards": 0}, {"replicas": -1}, {"shards": 2.5}, {"replicas": True}])
def test_bad_counts_are_refused(kw):
    with pytest.raises(CollectionOptionsError, match="at least 1"):
        CollectionOptions(**kw)


def test_the_embedded_index_refuses_shards_and_replicas(tmp_path):
    with pytest.raises(CollectionOptionsError, match="Qdrant server"):
        Store.open(tmp_path, dim=32, options=CollectionOptions(shards=2))
    Store.open(tmp_path / "ok", dim=32, options=CollectionOptions(shards=1, replicas=1)).close()


def test_cmr_index_passes_the_layout(monkeypatch, tmp_path, capsys):
    import cmr_search.indexer.index as indexer_index
    from cmr_search.indexer.errors import IndexerError
    from cmr_search.ui.index_cmd import main
    seen = {}

    def fake_index(*a, **kw):
        seen.update(kw)
        raise IndexerError("stopped by the test")

    def fake_push(*a, **kw):
        seen.update(kw)
        return 0

    monkeypatch.setattr(indexer_index, "index_archive", fake_index)
    monkeypatch.setattr(indexer_index, "push", fake_push)
    url = ["--url", "http://qdrant-0:6333", "--api-key", "k"]
    assert main(["--data", str(tmp_path), *url, "--shards", "6", "--replicas", "2", "--quantize"]) == 1
    assert seen["options"] == CollectionOptions(quantize=True, shards=6, replicas=2)
    seen.clear()
    assert main(["push", "--data", str(tmp_path), *url, "--shards", "4", "--replicas", "2"]) == 0
    assert seen["options"] == CollectionOptions(shards=4, replicas=2)
    monkeypatch.delenv("QDRANT_URL", raising=False)
    assert main(["--data", str(tmp_path), "--shards", "2"]) == 2             # embedded: a usage error
    assert "Qdrant server" in capsys.readouterr().err


def test_a_collection_made_by_another_worker_meanwhile_is_used():
    """Job arrays: two workers find no collection and both create it; the second gets HTTP 409."""
    from qdrant_client.http.exceptions import UnexpectedResponse

    class RacingClient(SpyClient):
        def create_collection(self, collection_name, **kw):
            super().create_collection(collection_name, **kw)          # the other worker, a moment earlier
            raise UnexpectedResponse(409, "Conflict", b"already exists", None)

    with Store.open(client=RacingClient(), dim=32, options=CollectionOptions(shards=2)) as s:
        s.upsert_studies(make_rows(n=5))
        assert s.count() == 5

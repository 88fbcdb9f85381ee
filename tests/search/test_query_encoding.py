"""search/query_encoding.py: how the client encodes queries (numpy where it can, one pass per hybrid
query, LRU caches, the torch-free checkpoint lookup)."""
from collections import OrderedDict

import numpy as np

from cmr_search.search.query_encoding import fast_checkpoint, lru_get
from cmr_search.search.settings import Settings


def test_lru_get_keeps_the_recently_used():
    cache, made = OrderedDict(), []
    make = lambda k: made.append(k) or k.upper()                 # noqa: E731
    for k in ["a", "b", "a", "c"]:
        lru_get(cache, k, make, size=2)
    assert made == ["a", "b", "c"] and list(cache) == ["a", "c"]  # "a" was used again: "b" went


def test_fast_checkpoint_follows_the_checkpoint_order(tmp_path, monkeypatch):
    def folder(name, weights="model.safetensors"):
        p = tmp_path / name
        p.mkdir(parents=True)
        (p / "config.json").write_text("{}")
        (p / weights).write_bytes(b"")
        return p
    monkeypatch.delenv("CMR_CHECKPOINT", raising=False)
    data = tmp_path / "data"
    assert fast_checkpoint(Settings(data)) is None                        # nothing anywhere
    own = folder("data/model")
    assert fast_checkpoint(Settings(data)) == str(own)                    # DATA/model
    env = folder("env")
    assert fast_checkpoint(Settings(data, env_checkpoint=str(env))) == str(env)
    explicit = folder("explicit")
    assert fast_checkpoint(Settings(data, checkpoint=str(explicit), env_checkpoint=str(env))) == str(explicit)
    published = folder("published", "pytorch_model.bin")
    assert fast_checkpoint(Settings(data, checkpoint=str(published))) is None    # torch loads that one
    assert fast_checkpoint(Settings(data, checkpoint="cmr-tiny", untrained=True)) is None


def test_a_hybrid_query_runs_the_transformer_once(aligned_client):
    enc = aligned_client.text_encoder
    assert type(enc).__name__ == "QueryEncoder"                  # tiny_model: the frozen MiniLM tower
    before = enc.bert.forward_passes
    aligned_client.search("concentric septal hypertrophy 4711", k=3)            # hybrid: both spaces
    assert enc.bert.forward_passes == before + 1
    aligned_client.search("concentric septal hypertrophy 4711", k=3)            # the query cache
    assert enc.bert.forward_passes == before + 1
    aligned_client.search("concentric septal hypertrophy 4712", k=3, mode="image")
    assert enc.bert.forward_passes == before + 2


def test_the_client_vectors_are_the_torch_and_sentence_encoders(aligned_client, tiny_model):
    from cmr_search.model import embed_texts
    from cmr_search.model.report_text import ReportTextEncoder
    q = "dilated LV with reduced EF, no LGE"
    aligned_client.search(q, k=1)
    np.testing.assert_allclose(aligned_client.encode_query(q), embed_texts(tiny_model, [q])[0], atol=2e-5)
    np.testing.assert_allclose(aligned_client.encode_report_query(q), ReportTextEncoder().encode_query(q),
                               atol=2e-5)

"""model/query_text.py: the numpy text path gives the torch tower's and the sentence encoder's vectors."""
import numpy as np
import pytest

from cmr_search.model.query_text import (QueryEncoder, TorchTextEncoder, gelu, minilm, query_encoder,
                                         report_query)

QUERIES = ["dilated LV with reduced EF", "Amyloid LGE pattern; no septal hypertrophy.", "x " * 300, "é ✓ ß"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_model):
    from cmr_search.model.checkpoint import save_checkpoint
    return save_checkpoint(tiny_model, tmp_path_factory.mktemp("ckpt") / "m")


def test_gelu_is_the_erf_gelu():
    import torch
    x = np.linspace(-8, 8, 2001, dtype=np.float32)
    np.testing.assert_allclose(gelu(x), torch.nn.functional.gelu(torch.from_numpy(x)).numpy(), atol=2e-6)


def test_checkpoint_encoder_matches_the_torch_tower(ckpt, tiny_model):
    from cmr_search.model import embed_texts
    from cmr_search.search.collection import model_id
    enc = QueryEncoder.from_checkpoint(ckpt)
    assert enc is not None and enc.embed_dim == tiny_model.embed_dim
    np.testing.assert_allclose(enc.encode(QUERIES), embed_texts(tiny_model, QUERIES), atol=2e-5)
    assert enc.model_id == model_id(tiny_model) == TorchTextEncoder(tiny_model).model_id


def test_report_query_matches_the_sentence_encoder():
    from cmr_search.model.report_text import ReportTextEncoder
    st = ReportTextEncoder()
    for q in QUERIES:
        np.testing.assert_allclose(report_query(q), st.encode_query(q), atol=2e-5)


def test_one_transformer_pass_serves_both_spaces(tiny_model):
    enc = QueryEncoder.from_model(tiny_model)
    assert enc is not None and enc.bert is minilm()            # the same backbone object: shared cache
    before = enc.bert.forward_passes
    q = "concentric hypertrophy, no LGE 12345"                 # report side: "concentric hypertrophy."
    assert enc.prefetch(q) and enc.bert.forward_passes == before + 1
    enc.encode([q])
    report_query(q)
    assert enc.bert.forward_passes == before + 1                # both read what the one pass pooled


def test_packed_texts_pool_as_each_alone():
    bert = minilm()
    texts = ["dilated LV", "a much longer query about asymmetric septal hypertrophy and patchy LGE", "x"]
    together = bert._forward(texts)
    alone = np.concatenate([bert._forward([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-6)


def test_other_towers_take_the_torch_path(tmp_path, tiny_model):
    import json
    import shutil
    from cmr_search.model.checkpoint import save_checkpoint
    folder = save_checkpoint(tiny_model, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["text"]["frozen"] = False                               # a fine-tuned tower: its own weights
    (folder / "config.json").write_text(json.dumps(cfg))
    assert QueryEncoder.from_checkpoint(folder) is None and query_encoder(checkpoint=folder) is None
    shutil.rmtree(folder)
    assert query_encoder(checkpoint=folder) is None              # unreadable: the torch loader explains

"""Text tower: published pooling + heads on a tiny random BERT; MiniLM agrees with sentence-transformers."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from cmr_search.model.config import TextConfig
from cmr_search.model.errors import TokenizerMissingError
from cmr_search.model.model import CMRClip
from cmr_search.model.text import default_text_path

from tests.helpers.model_helpers import small_config

TINY_BERT = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}


def _tiny_bert_model(tokenizer):
    cfg = small_config()
    text = TextConfig(kind="bert_config", bert=TINY_BERT, tokenizer=tokenizer, frozen=False, max_length=64,
                      width=32)
    cfg = replace(cfg, text=text, text_head="relu_linear", video_head="relu_linear", embed_dim=16)
    torch.manual_seed(0)
    return CMRClip(cfg).eval()


def test_pooling_and_heads_match_the_published_definition():
    m = _tiny_bert_model(str(default_text_path()))
    texts = ["Normal LV size and function.", "Dilated LV with severe systolic dysfunction and LGE", "x"]
    with torch.no_grad():
        ours = m.encode_text(texts)
        tok = m.tokenizer(texts, padding=True, return_tensors="pt")
        assert tok["attention_mask"].sum(1).min() < tok["attention_mask"].shape[1]   # padding present
        h = m.text_model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).last_hidden_state
        w = tok["attention_mask"].unsqueeze(-1).float()                    # CLS and SEP included
        pooled = (h * w).sum(1) / torch.clamp(w.sum(1), min=1e-9)
        lin = m.txt_proj[1]
        ref = torch.relu(pooled) @ lin.weight.t() + lin.bias
        feat = torch.randn(4, m.cfg.video.width)
        vref = torch.relu(feat) @ m.vid_proj[1].weight.t() + m.vid_proj[1].bias
        assert torch.allclose(m.vid_proj(feat), vref, atol=1e-6)
    assert torch.allclose(ours, ref, atol=1e-5)
    keys = [k for k in m.state_dict() if not k.startswith("video_model.")]
    assert "txt_proj.1.weight" in keys and "vid_proj.1.bias" in keys and "text_model.pooler.dense.weight" in keys
    assert not m.text_model.pooler.dense.weight.requires_grad              # unused by the pooling


def test_bert_from_config_without_tokenizer_says_how_to_fix():
    m = _tiny_bert_model(None)
    with pytest.raises(TokenizerMissingError, match="tokenizer"):
        m.encode_text(["a"])


def test_minilm_pooling_equals_sentence_transformers(tiny_model):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(default_text_path()), device="cpu")
    texts = ["Severe LV dilation.", "No late gadolinium enhancement is seen in the myocardium today."]
    ref = st.encode(texts, normalize_embeddings=True)
    with torch.no_grad():
        tok = tiny_model.tokenize(texts)
        ours = tiny_model.text_features(tok["input_ids"], tok["attention_mask"]).numpy()
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    assert np.allclose(ours, ref, atol=1e-5)


def test_frozen_text_tower_cache_and_gradients(tiny_model):
    assert not any(p.requires_grad for p in tiny_model.text_model.parameters())
    assert all(p.requires_grad for p in tiny_model.txt_proj.parameters())
    a = tiny_model.encode_text(["LV is dilated", "RV is dilated"])
    b = tiny_model.encode_text(["RV is dilated"])
    assert torch.allclose(a[1], b[0], atol=1e-6) and a.requires_grad

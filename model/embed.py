"""Batch inference: L2-normalised float32 embeddings as numpy arrays."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch


def _normalise(x: torch.Tensor) -> np.ndarray:
    x = x.float()
    return (x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)).cpu().numpy().astype(np.float32)


@torch.no_grad()
def embed_clips(model, batches: Iterable, device: str | torch.device | None = None) -> np.ndarray:
    """Iterable of (frames (B, F, H, W), view_ids (B, F), mask (B, F)[, texts[, measures (B, M)]]) ->
    (N, embed_dim) float32, rows L2-normalised. Texts are ignored; measures (model/measures.py) reach a
    model with a measure head (absent: the studies count as unmeasured)."""
    device = torch.device(device) if device is not None else model.device
    was_training = model.training
    model.eval()
    out = []
    try:
        for frames, view_ids, mask, *rest in batches:
            f = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames).float()
            v, m = torch.as_tensor(view_ids).long(), torch.as_tensor(mask).bool()
            meas = torch.as_tensor(np.asarray(rest[1])).float().to(device) if len(rest) > 1 and rest[1] is not None \
                else None
            out.append(_normalise(model.encode_video(f.to(device), v.to(device), m.to(device), meas)))
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, model.embed_dim), np.float32)
    return np.concatenate(out)


@torch.no_grad()
def embed_texts(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """N strings -> (N, embed_dim) float32, rows L2-normalised."""
    texts = list(texts)
    was_training = model.training
    model.eval()
    try:
        out = [_normalise(model.encode_text(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), np.float32)

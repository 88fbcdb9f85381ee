"""Contrastive losses. ClipLoss: symmetric InfoNCE with a learnable temperature (the default);
NormSoftmaxLoss: the published fixed-temperature loss (tau 0.05, both directions summed), for comparison.

Under DDP the features of every rank are gathered (with gradients for the local slice), so the
negatives are the global batch. `groups` (e.g. a diagnosis label per sample) spreads each row's target
over the samples of the same group. Note: for identical strings this changes nothing (their embeddings,
hence logits, are identical, and soft and hard targets then give the same loss and gradient).
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient over ranks and returns the local slice."""

    @staticmethod
    def forward(ctx, x):
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        return torch.cat(out, 0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather_features(x: torch.Tensor) -> torch.Tensor:
    """(B, D) per rank -> (world*B, D), the same B on every rank; gradients flow to the local slice.
    Each rank computes the global loss; with DDP's gradient averaging this equals one-process training
    on the global batch. No-op without DDP."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def gather_groups(g: torch.Tensor) -> torch.Tensor:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return g
    out = [torch.empty_like(g) for _ in range(dist.get_world_size())]
    dist.all_gather(out, g)
    return torch.cat(out)


def sim_matrix(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity (N, D) x (M, D) -> (N, M), norms floored at eps."""
    a = a.float() / a.float().norm(dim=1, keepdim=True).clamp(min=eps)
    b = b.float() / b.float().norm(dim=1, keepdim=True).clamp(min=eps)
    return a @ b.t()


def _targets(groups: torch.Tensor | None, n: int, device) -> torch.Tensor:
    """(n, n) row-stochastic target: 1 on the diagonal, or spread over rows of the same group."""
    if groups is None:
        return torch.eye(n, device=device)
    same = (groups[:, None] == groups[None, :]).float()
    return same / same.sum(1, keepdim=True)


class ClipLoss(nn.Module):
    """Symmetric InfoNCE: mean of video->text and text->video cross-entropy on scale * cosine."""

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0, learnable: bool = True):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)), requires_grad=learnable)
        self.max_scale = max_scale

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=self.max_scale)

    def forward(self, video: torch.Tensor, text: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        """video, text (B, D) un-normalised; groups (B,) int64 or None."""
        v, t = gather_features(video), gather_features(text)
        g = None if groups is None else gather_groups(groups.to(video.device))
        logits = self.scale() * sim_matrix(v, t)                          # (N, N) video x text
        target = _targets(g, logits.shape[0], logits.device)
        l_v = F.cross_entropy(logits, target)
        l_t = F.cross_entropy(logits.t(), target)
        return (l_v + l_t) / 2


class NormSoftmaxLoss(nn.Module):
    """Published CMR-CLIP loss: fixed tau = 0.05, text->video + video->text summed (not averaged)."""

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        self.temperature = temperature

    def forward(self, video: torch.Tensor, text: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        s = sim_matrix(gather_features(text), gather_features(video)) / self.temperature   # (N, N) text x video
        i = torch.arange(s.shape[0], device=s.device)
        return F.cross_entropy(s, i) + F.cross_entropy(s.t(), i)

"""Divided space-time attention ViT (Frozen-in-Time "SpaceTimeTransformer"), key-for-key with CMR-CLIP.

Tokens: 1 CLS + F x P patch tokens, frame-major. Per block (docs/cmrclip-reference.md §1.2):
    t = TimeAttn(LN3(x)); r = x + t; s = SpaceAttn(LN1(r)); y = x + s; out = y + MLP(LN2(y))
In both attentions the CLS query attends to every token; a patch query attends to CLS + its own group
(time: the same patch in every frame; space: the patches of its own frame). Attention runs through
F.scaled_dot_product_attention. With a frame mask (and cfg.mask_attention) masked frames are never keys
of valid tokens; masked pixels are zeroed before the patch embedding in every case.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..preprocess import VIEWS
from ..config import VideoConfig
from ..errors import InputShapeError


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, Fr, C, H, W = x.shape                                          # (B, F, C, H, W)
        x = self.proj(x.reshape(B * Fr, C, H, W))                         # (B*F, D, h, w)
        return x.flatten(2).transpose(1, 2).reshape(B, -1, x.shape[1])    # (B, F*P, D)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


def _sdpa(q, k, v, keep=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep)


class VarAttention(nn.Module):
    """Attention over CLS + groups; `mode` is "space" (groups = frames) or "time" (groups = patch sites)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mode: str, Fr: int, keep: torch.Tensor | None) -> torch.Tensor:
        B, N, D = x.shape                                                  # (B, 1+F*P, D)
        h, P = self.heads, (N - 1) // Fr
        q, k, v = self.qkv(x).view(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)   # each (B, h, N, hd)
        tok_keep = None
        if keep is not None:                                               # keep: (B, 1+F) incl. CLS
            tok_keep = torch.cat([keep[:, :1], keep[:, 1:].repeat_interleave(P, 1)], 1)  # (B, N)
            tok_keep = tok_keep[:, None, None, :]
        cls_out = _sdpa(q[:, :, :1], k, v, tok_keep)                       # (B, h, 1, hd)
        q, k_, v_ = (t[:, :, 1:].reshape(B, h, Fr, P, -1) for t in (q, k, v))   # (B, h, F, P, hd)
        if mode == "space":   # group = one frame: (B*F, h, P, hd)
            perm, G, L, gkeep = (0, 2, 1, 3, 4), Fr, P, None
        else:                 # group = one patch site over time: (B*P, h, F, hd)
            perm, G, L = (0, 3, 1, 2, 4), P, Fr
            gkeep = None if keep is None else keep[:, None, :].expand(B, P, 1 + Fr).reshape(B * P, 1, 1, 1 + Fr)
        q, k_, v_ = (t.permute(*perm).reshape(B * G, h, L, -1) for t in (q, k_, v_))
        cls_k = k[:, None, :, :1].expand(B, G, h, 1, k.shape[-1]).reshape(B * G, h, 1, -1)
        cls_v = v[:, None, :, :1].expand(B, G, h, 1, v.shape[-1]).reshape(B * G, h, 1, -1)
        out = _sdpa(q, torch.cat([cls_k, k_], 2), torch.cat([cls_v, v_], 2), gkeep)   # (B*G, h, L, hd)
        out = out.view(B, G, h, L, -1)
        out = out.permute(0, 2, 1, 3, 4) if mode == "space" else out.permute(0, 2, 3, 1, 4)  # (B,h,F,P,hd)
        out = torch.cat([cls_out, out.reshape(B, h, Fr * P, -1)], 2)       # (B, h, N, hd)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class SpaceTimeBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_bias: bool, eps: float, drop: float):
        super().__init__()   # registration order = published state_dict order
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = VarAttention(dim, heads, qkv_bias)
        self.timeattn = VarAttention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.norm3 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, Fr: int, keep: torch.Tensor | None) -> torch.Tensor:
        r = x + self.timeattn(self.norm3(x), "time", Fr, keep)
        y = x + self.attn(self.norm1(r), "space", Fr, keep)     # residual from x, not r (frozen-in-time)
        return y + self.mlp(self.norm2(y))


class SpaceTimeTransformer(nn.Module):
    def __init__(self, cfg: VideoConfig):
        super().__init__()
        self.cfg = cfg
        D, p = cfg.width, cfg.patch_size
        self.patches_per_frame = (cfg.img_size // p) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patches_per_frame + 1, D))
        self.temporal_embed = nn.Parameter(torch.zeros(1, cfg.num_frames, D))
        self.patch_embed = PatchEmbed(cfg.in_chans, D, p)
        self.blocks = nn.ModuleList(SpaceTimeBlock(D, cfg.heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.ln_eps,
                                                   cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(D, eps=cfg.ln_eps)
        self.view_embed = nn.Embedding(len(VIEWS), D) if cfg.view_embed else None
        self.register_buffer("mean", torch.tensor(cfg.norm_mean).view(1, 1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.norm_std).view(1, 1, -1, 1, 1), persistent=False)
        self._init_weights()

    @property
    def width(self) -> int:
        return self.cfg.width

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for t in (self.cls_token, self.pos_embed):
            nn.init.trunc_normal_(t, std=0.02)
        if self.view_embed is not None:
            nn.init.trunc_normal_(self.view_embed.weight, std=0.02)
        if self.cfg.time_init == "zeros":      # published: time attention outputs exactly 0 at init
            for blk in self.blocks:
                nn.init.zeros_(blk.timeattn.qkv.weight)
                nn.init.zeros_(blk.timeattn.qkv.bias) if blk.timeattn.qkv.bias is not None else None
                nn.init.ones_(blk.timeattn.proj.weight)
                nn.init.zeros_(blk.timeattn.proj.bias)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None,
                view_ids: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, F, C, img, img) already normalised -> CLS feature (B, D); keep (B, F) bool or None."""
        B, Fr = x.shape[:2]
        if Fr > self.cfg.num_frames:
            raise InputShapeError(f"{Fr} frames > num_frames={self.cfg.num_frames}; crop the clip or load the "
                                  "checkpoint with more frames (temporal_embed is zero-filled).")
        P = self.patches_per_frame
        x = self.patch_embed(x)                                            # (B, F*P, D)
        pos = self.pos_embed[:, 1:].repeat(1, Fr, 1) + self.temporal_embed[:, :Fr].repeat_interleave(P, 1)
        if self.view_embed is not None and view_ids is not None:
            pos = pos + self.view_embed(view_ids.long()).repeat_interleave(P, 1)   # (B, F*P, D)
        x = torch.cat([self.cls_token.expand(B, -1, -1) + self.pos_embed[:, :1], x + pos], 1)  # (B, 1+F*P, D)
        if keep is not None:
            keep = torch.cat([keep.new_ones(B, 1), keep.bool()], 1)        # (B, 1+F)
        for blk in self.blocks:
            x = blk(x, Fr, keep)
        return self.norm(x)[:, 0]                                          # (B, D)

    def forward_clip(self, frames: torch.Tensor, view_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The clip contract: frames (B, F, H, W) in [0, 1] -> (B, D)."""
        x = to_vit_input(frames, mask, self.cfg.img_size, self.mean, self.std)
        keep = mask if self.cfg.mask_attention else None
        return self(x, keep=keep, view_ids=view_ids)


def to_vit_input(frames: torch.Tensor, mask: torch.Tensor, size: int, mean: torch.Tensor,
                 std: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W) in [0, 1] -> (B, F, C, size, size): masked frames zeroed, bilinear resize, grey
    repeated to C channels, per-channel (x - mean) / std."""
    B, Fr, H, W = frames.shape
    x = frames.masked_fill(~mask.bool()[..., None, None], 0.0)
    if (H, W) != (size, size):
        x = F.interpolate(x.reshape(B * Fr, 1, H, W), size=(size, size), mode="bilinear",
                          align_corners=False).view(B, Fr, size, size)
    x = x.unsqueeze(2).expand(B, Fr, mean.shape[2], size, size)
    return (x - mean.to(x.dtype)) / std.to(x.dtype)                      # (B, F, C, size, size)

"""cmr-tiny video tower: a per-frame 2-D CNN (one token per frame) + a small temporal transformer.

Frame tokens get a learned frame-position embedding and a view embedding; masked frames are zeroed,
excluded as attention keys and excluded from the pooling, so their pixels cannot change the output.
A learned CLS token is always a valid key (no all-masked NaNs) and joins the masked mean.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..preprocess import VIEWS
from ..config import VideoConfig
from ..errors import InputShapeError


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch // 4) or 1, ch)


class FrameCNN(nn.Module):
    """(N, 1, H, W) -> (N, C_last * cells): stride-2 stages of [conv3x3 s2, GroupNorm, GELU], then
    pooling: global average (`grid=0`: cells = 1) or an average to grid x grid cells, flattened
    channel-major (cells = grid^2), which keeps where in the heart-centred crop a feature sits.
    GroupNorm (not BatchNorm) keeps every frame independent of the other frames and samples."""

    def __init__(self, channels: tuple[int, ...], grid: int = 0):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), _norm(c), nn.GELU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.grid = grid
        self.out_dim = channels[-1] * max(grid, 1) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)                                  # (N, C, h, w)
        if not self.grid:
            return y.mean(dim=(-2, -1))                   # (N, C)
        return F.adaptive_avg_pool2d(y, self.grid).flatten(1)   # (N, C * grid^2), channel-major


class Block(nn.Module):
    """Pre-norm transformer block with F.scaled_dot_product_attention and a key padding mask."""

    def __init__(self, d: int, heads: int, mlp_ratio: float, eps: float, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        h = int(d * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, d), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape                                                 # (B, T, D)
        q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, self.heads, D // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))                  # (B, h, T, hd)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])   # keys: (B,1,1,T)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.norm2(x))


class TinyVideo(nn.Module):
    def __init__(self, cfg: VideoConfig):
        super().__init__()
        d = cfg.width
        self.cfg = cfg
        self.cnn = FrameCNN(tuple(cfg.cnn_channels), cfg.pool_grid if cfg.pool == "grid" else 0)
        self.token = nn.Linear(self.cnn.out_dim, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.frame_embed = nn.Parameter(torch.zeros(1, cfg.num_frames, d))
        self.view_embed = nn.Embedding(len(VIEWS), d) if cfg.view_embed else None
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio, cfg.ln_eps, cfg.dropout)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        nn.init.trunc_normal_(self.frame_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.view_embed is not None:
            nn.init.trunc_normal_(self.view_embed.weight, std=0.02)
        self._register_load_state_dict_pre_hook(self._grid_from_mean)

    def _grid_from_mean(self, state_dict, prefix, *args) -> None:
        """Loading weights of a pool="mean" model into a pool="grid" one: spread each channel's token
        weight evenly over its cells, so the grid model starts out computing exactly what the mean model
        did (a mean of the cells is the global mean when the map divides evenly) and fine-tuning can learn
        where things are from there."""
        key, cells = prefix + "token.weight", self.cnn.grid ** 2
        w = state_dict.get(key)
        if cells > 1 and w is not None and w.shape[1] * cells == self.token.in_features:
            state_dict[key] = w.repeat_interleave(cells, dim=1) / cells     # (d, C) -> (d, C * cells)

    @property
    def width(self) -> int:
        return self.cfg.width

    def forward(self, frames: torch.Tensor, view_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, Fr, H, W = frames.shape                                        # (B, F, H, W)
        if Fr > self.cfg.num_frames:
            raise InputShapeError(f"{Fr} frames > num_frames={self.cfg.num_frames} of this model; "
                                  "use the checkpoint's ClipSpec (preprocess.json) to build clips.")
        mask = mask.bool()
        frames = frames.masked_fill(~mask[..., None, None], 0.0)          # masked pixels never matter
        tok = self.token(self.cnn(frames.reshape(B * Fr, 1, H, W))).view(B, Fr, -1)   # (B, F, d)
        tok = tok + self.frame_embed[:, :Fr]
        if self.view_embed is not None:
            tok = tok + self.view_embed(view_ids.long())
        x = torch.cat([self.cls_token.expand(B, -1, -1), tok], dim=1)    # (B, 1+F, d)
        keep = torch.cat([mask.new_ones(B, 1), mask], dim=1)              # (B, 1+F) True = attend
        for blk in self.blocks:
            x = blk(x, keep)
        x = self.norm(x)
        w = keep.to(x.dtype).unsqueeze(-1)                                # (B, 1+F, 1)
        return (x * w).sum(1) / w.sum(1)                                  # (B, d) masked mean incl. CLS

    def forward_clip(self, frames: torch.Tensor, view_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The clip contract (same as forward for this tower)."""
        return self(frames, view_ids, mask)

"""Video towers: sizes, shapes, mask invariance, and the divided space-time attention vs its definition."""
from dataclasses import replace

import pytest
import torch

from cmr_search.model.config import load_config
from cmr_search.model.errors import InputShapeError
from cmr_search.model.model import CMRClip, count_params
from cmr_search.model.towers import build_video_tower
from cmr_search.model.towers.spacetime import SpaceTimeTransformer

from tests.helpers.model_helpers import random_batch, small_config


def test_cmr_tiny_video_tower_size():
    cfg = load_config("cmr-tiny")
    n = count_params(build_video_tower(cfg.video))
    assert 0.6e6 <= n <= 1.5e6, n


def test_embedding_shapes(tiny_model, tiny_cfg):
    f, v, m = random_batch(tiny_cfg, B=3)
    with torch.no_grad():
        e = tiny_model.encode_video(f, v, m)
        t = tiny_model.encode_text(["a", "b c"])
    assert e.shape == (3, 256) and t.shape == (2, 256)


@pytest.mark.parametrize("kind,video", [("tiny", {}), ("tiny", {"pool": "grid"}),
                                        ("spacetime", {}), ("spacetime", {"mask_attention": False})])
def test_masked_frames_do_not_change_the_embedding(kind, video):
    cfg = small_config(kind, **video)
    tower = build_video_tower(cfg.video).eval()
    f, v, m = random_batch(cfg, B=3)
    f2 = f.clone()
    f2[~m] = torch.rand(int((~m).sum()), *f.shape[2:])                  # new pixels in masked frames only
    with torch.no_grad():
        a, b = tower.forward_clip(f, v, m), tower.forward_clip(f2, v, m)
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


def test_grid_pooling_sees_where_a_feature_is_and_mean_pooling_does_not():
    """One bright patch, moved by the CNN's total stride (16 px) and kept further than its receptive field
    (31 px) from the borders: the global mean of the last map cannot tell the two frames apart, the grid
    cells can."""
    from cmr_search.model.towers.tiny import FrameCNN
    torch.manual_seed(0)
    x = torch.zeros(2, 1, 128, 128)
    x[0, 0, 56:64, 40:48], x[1, 0, 56:64, 56:64] = 1.0, 1.0
    mean_cnn, grid_cnn = FrameCNN((4, 8, 8, 8)), FrameCNN((4, 8, 8, 8), grid=4)
    grid_cnn.load_state_dict(mean_cnn.state_dict())
    with torch.no_grad():
        m, g = mean_cnn(x), grid_cnn(x)
    assert m.shape == (2, 8) and g.shape == (2, 8 * 16)
    torch.testing.assert_close(m[0], m[1], atol=1e-6, rtol=1e-6)
    assert (g[0] - g[1]).abs().max() > 1e-2


def test_mean_pool_weights_load_into_a_grid_model_and_embed_the_same():
    """Fine-tuning a mean-pooled checkpoint with pool="grid": the token weight is spread over the cells,
    so before any step the grid model embeds exactly as the mean model did."""
    torch.manual_seed(0)
    mean_cfg = small_config()
    grid_cfg = replace(mean_cfg, video=replace(mean_cfg.video, pool="grid", pool_grid=2))
    mean_tower = build_video_tower(mean_cfg.video).eval()
    grid_tower = build_video_tower(grid_cfg.video).eval()
    grid_tower.load_state_dict(mean_tower.state_dict())
    assert grid_tower.token.weight.shape[1] == 4 * mean_tower.token.weight.shape[1]
    f, v, m = random_batch(mean_cfg, B=2)
    with torch.no_grad():
        torch.testing.assert_close(grid_tower.forward_clip(f, v, m), mean_tower.forward_clip(f, v, m),
                                   atol=1e-5, rtol=1e-5)


def test_all_frames_masked_is_finite():
    cfg = small_config()
    tower = build_video_tower(cfg.video).eval()
    f, v, m = random_batch(cfg, B=2)
    with torch.no_grad():
        out = tower.forward_clip(f, v, torch.zeros_like(m))
    assert torch.isfinite(out).all()


def test_too_many_frames_is_a_clear_error():
    cfg = small_config()
    tower = build_video_tower(cfg.video)
    with pytest.raises(InputShapeError, match="num_frames"):
        tower.forward_clip(torch.rand(1, 17, 32, 32), torch.zeros(1, 17, dtype=torch.long),
                           torch.ones(1, 17, dtype=torch.bool))


# ---- the published divided attention, written independently (einsum, explicit groups) ---------------
def _ref_attn(mod, x, mode, Fr):
    B, N, D = x.shape
    h = mod.heads
    q, k, v = mod.qkv(x).chunk(3, dim=-1)
    q, k, v = (t.reshape(B, N, h, D // h).permute(0, 2, 1, 3).reshape(B * h, N, D // h) for t in (q, k, v))
    q = q * (D // h) ** -0.5
    att = lambda a, b, c: torch.einsum("bij,bjd->bid", torch.einsum("bid,bjd->bij", a, b).softmax(-1), c)
    cls_out = att(q[:, :1], k, v)
    P = (N - 1) // Fr
    outs = torch.zeros_like(q[:, 1:])
    for g in range(Fr if mode == "space" else P):
        idx = [1 + g * P + n for n in range(P)] if mode == "space" else [1 + f * P + g for f in range(Fr)]
        kk, vv = torch.cat([k[:, :1], k[:, idx]], 1), torch.cat([v[:, :1], v[:, idx]], 1)
        outs[:, [i - 1 for i in idx]] = att(q[:, idx], kk, vv)
    out = torch.cat([cls_out, outs], 1).reshape(B, h, N, D // h).permute(0, 2, 1, 3).reshape(B, N, D)
    return mod.proj(out)


def _ref_forward(st, x):
    B, Fr = x.shape[:2]
    P = st.patches_per_frame
    t = st.patch_embed(x)
    pos = torch.cat([st.pos_embed[:, :1], st.pos_embed[:, 1:].repeat(1, st.cfg.num_frames, 1)
                     + st.temporal_embed.repeat_interleave(P, 1)], 1)
    t = torch.cat([st.cls_token.expand(B, -1, -1), t], 1) + pos[:, :1 + Fr * P]
    for blk in st.blocks:
        r = t + _ref_attn(blk.timeattn, blk.norm3(t), "time", Fr)
        y = t + _ref_attn(blk.attn, blk.norm1(r), "space", Fr)
        t = y + blk.mlp(blk.norm2(y))
    return st.norm(t)[:, 0]


def test_spacetime_matches_the_published_definition():
    cfg = small_config("spacetime", view_embed=False, time_init="normal").video
    cfg = replace(cfg, in_chans=3, norm_mean=(0.5, 0.5, 0.5), norm_std=(0.25, 0.25, 0.25))
    torch.manual_seed(0)
    st = SpaceTimeTransformer(cfg).eval()
    with torch.no_grad():
        st.temporal_embed.normal_(0, 0.1)
        x = torch.randn(2, 5, 3, 32, 32)                                   # F=5 < num_frames=16
        assert torch.allclose(st(x), _ref_forward(st, x), atol=1e-5)


def test_time_attention_is_zero_at_published_init():
    cfg = small_config("spacetime", view_embed=False, time_init="zeros").video
    st = SpaceTimeTransformer(cfg)
    blk = st.blocks[0]
    assert torch.all(blk.timeattn.proj.weight == 1) and torch.all(blk.timeattn.qkv.weight == 0)
    x = torch.randn(2, 1 + 4 * st.patches_per_frame, cfg.width)
    out = blk.timeattn(x, "time", 4, None) - blk.timeattn.proj.bias
    assert torch.count_nonzero(out) == 0

"""The published checkpoint: key/shape manifest, config forms, wrapper/prefix handling, strict loading."""
import json
from pathlib import Path

import pytest
import torch

from cmr_search.model.cmrclip_compat import (clean_state_dict, config_from_published, fix_temporal_embed, load_strict,
                                  read_state_dict)
from cmr_search.model.config import load_config
from cmr_search.model.errors import CheckpointMismatchError
from cmr_search.model.model import CMRClip

# The published checkpoint's key manifest lives beside the project (read-only), never copied into it.
MANIFEST = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "cmrclip_state_dict.json"
pytestmark = pytest.mark.skipif(not MANIFEST.exists(),
                                reason=f"needs the published key manifest at {MANIFEST} (../shared)")

DTYPES = {"float32": torch.float32, "int64": torch.int64}
PUBLISHED_CONFIG = {"video_params": {"model": "SpaceTimeTransformer", "arch_config": "base_patch16_224",
                                     "num_frames": 64, "pretrained": True, "time_init": "zeros"},
                    "text_params": {"model": "emilyalsentzer/Bio_ClinicalBERT", "pretrained": True,
                                    "input": "text"},
                    "projection": "minimal", "load_checkpoint": ""}


def manifest():
    return json.loads(MANIFEST.read_text())


def test_b16_keys_shapes_and_order_equal_the_manifest():
    with torch.device("meta"):                                               # shapes only, no memory
        m = CMRClip(load_config("cmr-clip-b16"))
    ref = manifest()
    want = [k for k in ref["keys"] if k not in ref["optional"]]
    sd = m.state_dict()
    assert list(sd) == want
    assert all(list(sd[k].shape) == ref["keys"][k][0] for k in want)
    n = sum(v.numel() for v in sd.values())
    assert n == ref["float32_parameters"] == 223_312_384


@pytest.mark.parametrize("form", ["top", "nested"])
def test_both_published_config_forms(form):
    cfg = dict(PUBLISHED_CONFIG, projection_dim=512)
    if form == "nested":
        cfg = {"name": "CMRCLIP", "arch": {"type": "CMRCLIP", "args": cfg}}
    mc = config_from_published(cfg, tokenizer="/somewhere")
    assert mc.video.num_frames == 64 and mc.embed_dim == 512 and mc.text.tokenizer == "/somewhere"


def test_prefix_wrapper_and_position_ids(tmp_path):
    sd = {"module.text_model.embeddings.position_ids": torch.arange(4)[None],
          "module.vid_proj.1.bias": torch.ones(3)}
    torch.save({"arch": "CMRCLIP", "epoch": 3, "state_dict": sd}, tmp_path / "ckpt.pth")
    out = read_state_dict(tmp_path / "ckpt.pth")
    assert list(out) == ["vid_proj.1.bias"]
    assert clean_state_dict({"a.b": torch.zeros(1)}) == {"a.b": torch.zeros(1)}


def test_temporal_embed_crop_and_zero_fill():
    t = torch.randn(1, 64, 8)
    crop = fix_temporal_embed({"video_model.temporal_embed": t}, 32)["video_model.temporal_embed"]
    assert torch.equal(crop, t[:, :32])
    grow = fix_temporal_embed({"video_model.temporal_embed": t}, 80)["video_model.temporal_embed"]
    assert torch.equal(grow[:, :64], t) and torch.count_nonzero(grow[:, 64:]) == 0


def test_mismatch_lists_first_missing_and_unexpected(tiny_model):
    sd = dict(tiny_model.state_dict())
    sd.pop("vid_proj.1.weight")
    sd["vid_proj.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as e:
        load_strict(tiny_model, sd, "x.bin")
    assert "vid_proj.1.weight" in str(e.value) and "vid_proj.0.weight" in str(e.value)


def random_published_state_dict(with_position_ids=True):
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, (shape, dtype) in manifest()["keys"].items():
        if k.endswith("position_ids"):
            if with_position_ids:
                out[k] = torch.arange(shape[-1], dtype=DTYPES[dtype]).expand(*shape).clone()
            continue
        out[k] = torch.randn(*shape, generator=g, dtype=DTYPES[dtype]) * 0.02
    return out


@pytest.mark.slow
def test_random_published_checkpoint_loads_strictly(tmp_path):
    from cmr_search.model import create_model
    sd = random_published_state_dict()
    assert len(sd) == 427
    model = CMRClip(load_config("cmr-clip-b16"))
    variants = {"plain": sd, "no_position_ids": {k: v for k, v in sd.items() if "position_ids" not in k},
                "module_prefix": {f"module.{k}": v for k, v in sd.items()}}
    for name, v in variants.items():
        load_strict(model, clean_state_dict(v), name)
        assert torch.equal(model.state_dict()["vid_proj.1.weight"], sd["vid_proj.1.weight"]), name
    del model
    # the training-checkpoint wrapper through the public loader, with config.json next to it
    torch.save({"epoch": 1, "state_dict": variants["module_prefix"]}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps({"arch": {"type": "CMRCLIP", "args": PUBLISHED_CONFIG}}))
    del variants
    m = create_model("cmr-clip-b16", checkpoint=tmp_path)
    assert torch.equal(m.state_dict()["video_model.temporal_embed"], sd["video_model.temporal_embed"])
    with torch.no_grad():                                                    # a short clip runs (F=2 < 64)
        f = torch.rand(1, 2, 224, 224)
        e = m.encode_video(f, torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool))
    assert e.shape == (1, 512)

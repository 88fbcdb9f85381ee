"""Training core: overfitting, exact resume, view dropout, schedule, checkpoint folder, embedding helpers."""
import json
import random

import numpy as np
import torch

from cmr_search.model import embed_clips, embed_texts, load_checkpoint, save_checkpoint
from cmr_search.model.preprocess import VIEW_ID, ClipSpec
from cmr_search.model.model import CMRClip
from cmr_search.model.training.trainer import TrainConfig, Trainer, lr_factor, view_dropout

from tests.helpers.model_helpers import random_batch, small_config

TEXTS = ["normal study", "dilated LV with reduced EF", "HCM with septal hypertrophy", "amyloid pattern LGE",
         "RV dilation", "inferior MI scar", "athlete heart", "hypertensive LVH"]


def make_batches(cfg, n_batches=4, B=8):
    """Fixed synthetic data: 8 studies (random clips) paired with 8 distinct texts, shuffled per batch."""
    f, v, m = random_batch(cfg, B=8, seed=1)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n_batches):
        i = rng.permutation(8)[:B]
        out.append((f[i], v[i], m[i], [TEXTS[j] for j in i]))
    return out


def _augment(text, rng):
    return text.lower() if rng.random() < 0.5 else text


def _trainer(cfg, out_dir, **kw):
    torch.manual_seed(0)
    model = CMRClip(cfg)
    tc = TrainConfig(out_dir=str(out_dir), lr=2e-3, warmup_steps=3, log_every=1, ckpt_every=1000, seed=0, **kw)
    return Trainer(model, tc, text_augment=_augment, device="cpu")


def test_overfits_a_few_batches(tiny_cfg, tmp_path):
    batches = make_batches(tiny_cfg) * 10                                # 40 steps over the same 8 pairs
    tr = _trainer(tiny_cfg, tmp_path, total_steps=40, view_dropout=0.0)
    res = tr.fit(batches)
    first, last = np.mean(res["losses"][:3]), np.mean(res["losses"][-3:])
    assert last < 0.5 * first, (first, last)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 40 and {"loss", "lr", "logit_scale", "samples_per_s"} <= set(rows[-1])
    m = load_checkpoint(tmp_path / "final")                              # final checkpoint folder written
    assert (tmp_path / "final" / "card.json").exists()
    assert torch.allclose(m.vid_proj[1].weight, tr.model.vid_proj[1].weight)


def test_resume_gives_the_same_trajectory(tiny_cfg, tmp_path):
    batches = make_batches(tiny_cfg, n_batches=10)
    full = _trainer(tiny_cfg, tmp_path / "full", total_steps=10, view_dropout=0.5, ema_decay=0.9).fit(batches)
    part = _trainer(tiny_cfg, tmp_path / "part", total_steps=10, view_dropout=0.5, ema_decay=0.9)
    first = part.fit(batches, max_steps=4)
    assert first["step"] == 4 and not (tmp_path / "part" / "final").exists()
    rest = _trainer(tiny_cfg, tmp_path / "part", total_steps=10, view_dropout=0.5, ema_decay=0.9)
    assert rest.step == 4
    second = rest.fit(batches)
    assert np.allclose(first["losses"] + second["losses"], full["losses"], rtol=0, atol=1e-6)
    assert json.loads((tmp_path / "part" / "final" / "card.json").read_text())["ema"] is True


def test_resume_logs_each_step_once(tiny_cfg, tmp_path):
    """A kill after the saved state at step 4 left lines of steps 5-6 and half a line: the resumed run
    drops them and logs 5-6 again (tests/model/test_train_kill_drill.py does this with real kills)."""
    batches = make_batches(tiny_cfg, n_batches=8)
    _trainer(tiny_cfg, tmp_path, total_steps=8).fit(batches, max_steps=4)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 1.0}\n{"step": 6, "loss": 1.0}\n{"step": 7, "lo')
    _trainer(tiny_cfg, tmp_path, total_steps=8).fit(batches)
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))


def test_view_dropout_keeps_one_kind():
    cfg = small_config()
    f, v, m = random_batch(cfg, B=64)
    out = view_dropout(v, m, 1.0, torch.Generator().manual_seed(0))
    lge = v >= VIEW_ID["lge_sax"]
    assert torch.equal(out[0], m[0])                                     # sample 0 has no LGE: untouched
    kinds = [(bool((out[i] & ~lge[i]).any()), bool((out[i] & lge[i]).any())) for i in range(1, 64)]
    assert all(c != g for c, g in kinds)                                 # exactly one kind left
    assert {k for k in kinds} == {(True, False), (False, True)}          # both kinds get dropped
    assert not (out & ~m).any()                                          # never unmasks a frame


def test_warmup_then_cosine():
    lrs = [lr_factor(s, 10, 100) for s in range(100)]
    assert lrs[0] == 0.1 and lrs[9] == 1.0 and lrs[10] == 1.0
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.001


def test_checkpoint_folder_roundtrip(tiny_model, tmp_path):
    folder = save_checkpoint(tiny_model, tmp_path / "ckpt", card={"note": "test"})
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "preprocess.json",
                                                  "card.json"}
    assert ClipSpec.from_json(folder / "preprocess.json") == tiny_model.clip_spec
    from safetensors import safe_open
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert not any(k.startswith("text_model.") for k in f.keys())    # frozen MiniLM saved by reference
    m2 = load_checkpoint(folder)
    f, v, m = random_batch(tiny_model.cfg, B=2)
    assert np.allclose(embed_clips(tiny_model, [(f, v, m)]), embed_clips(m2, [(f.numpy(), v.numpy(), m.numpy())]),
                       atol=1e-6)
    assert np.allclose(embed_texts(tiny_model, TEXTS[:3]), embed_texts(m2, TEXTS[:3]), atol=1e-6)


def test_embed_helpers_are_normalised_float32(tiny_model):
    f, v, m = random_batch(tiny_model.cfg, B=5)
    e = embed_clips(tiny_model, [(f[:2], v[:2], m[:2]), (f[2:], v[2:], m[2:], ["ignored"] * 3)])
    t = embed_texts(tiny_model, TEXTS, batch_size=3)
    for x, n in ((e, 5), (t, 8)):
        assert x.dtype == np.float32 and x.shape == (n, 256)
        assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)

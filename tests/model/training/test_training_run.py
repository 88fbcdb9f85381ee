"""The training run (model.training.run, what `cmr train` runs) end to end on a small fake cache
(16-frame 32-px cmr-tiny): checkpoint and card, resume, --init, several caches, torchrun."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cache_helpers import make_fake_cache, write_small_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmd")
    return make_fake_cache(d / "cache", n=40), write_small_config(d / "small.json")


def _train(cache, cfg, out, *extra):
    from cmr_search.model.training.run import main
    return main(["--cache", str(cache), "--config", str(cfg), "--out", str(out), "--batch", "8",
                 "--no-progress", "--log-every", "1", *extra])


def test_train_writes_a_checkpoint_with_a_card(setup, tmp_path):
    cache, cfg = setup
    (tmp_path / "test_keys.txt").write_text("k0_0000\nk0_0001\n")
    out = tmp_path / "ckpt"
    assert _train(cache, cfg, out, "--epochs", "2", "--wording", "all", "--text-variants", "3",
                  "--exclude-keys", str(tmp_path / "test_keys.txt")) == 0
    run_args = json.loads((out / "train" / "args.json").read_text())
    assert run_args["text_variants"] == 3 and run_args["text_augment"] == 0.15
    assert {"config.json", "model.safetensors", "preprocess.json", "card.json"} <= {p.name for p in out.iterdir()}
    card = json.loads((out / "card.json").read_text())
    data = card["data"]
    assert data["excluded_keys"] == 2 and data["holdout"]["fraction"] == 0.2
    assert data["n_studies"] + data["holdout"]["n_held_out"] == 38
    assert card["seed"] == 0 and card["device"] == "cpu" and card["code_version"]["model_sources_sha256_16"]
    assert card["schedule"]["steps"] == 2 * card["schedule"]["steps_per_epoch"]
    assert len(card["epoch_losses"]) == 2 and card["demonstration_only"] is True
    rows = [json.loads(x) for x in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    assert any("epoch_loss" in r for r in rows) and any("samples_per_s" in r for r in rows)
    from cmr_search.model import load_checkpoint
    load_checkpoint(out)
    assert _train(cache, cfg, out, "--epochs", "2") == 2                       # run exists: needs --resume


def test_train_resume_continues_the_schedule(setup, tmp_path):
    cache, cfg = setup
    out = tmp_path / "ckpt"
    assert _train(cache, cfg, out, "--epochs", "2", "--max-steps", "2") == 0    # a schedule of 2 steps
    assert (out / "model.safetensors").exists()
    out2 = tmp_path / "ckpt2"
    assert _train(cache, cfg, out2, "--epochs", "2", "--seed", "1") == 0
    assert _train(cache, cfg, out2, "--epochs", "3", "--seed", "1", "--resume") == 2   # changed args refused
    assert _train(cache, cfg, out2, "--epochs", "2", "--seed", "1", "--resume") == 0   # nothing left to do


def test_train_init_starts_from_a_checkpoint_at_another_frame_size(setup, tmp_path):
    """--init copies a checkpoint's weights (fine-tuning), also into a config with larger frames; the
    card names the checkpoint; another architecture is refused with a message naming both."""
    import torch
    from cmr_search.model import load_checkpoint
    cache, cfg = setup
    base = tmp_path / "base"
    assert _train(cache, cfg, base, "--epochs", "1") == 0
    big = json.loads(cfg.read_text())
    big["clip"] = {**(big.get("clip") or {}), "size": 48}
    (tmp_path / "big.json").write_text(json.dumps(big))
    ft = tmp_path / "ft"
    assert _train(cache, tmp_path / "big.json", ft, "--epochs", "1", "--max-steps", "1", "--lr", "0",
                  "--init", str(base)) == 0
    card = json.loads((ft / "card.json").read_text())
    assert card["init"]["checkpoint"] == str(base.resolve()) and card["init"]["weights_sha256_16"]
    a, b = load_checkpoint(base), load_checkpoint(ft)
    assert b.clip_spec.size == 48 and a.clip_spec.size != 48
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k                                     # lr 0: the weights stay the init
    other = json.loads(cfg.read_text())
    other["embed_dim"] = other["embed_dim"] * 2
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert _train(cache, tmp_path / "other.json", tmp_path / "bad", "--epochs", "1", "--init", str(base)) == 1


def test_train_on_two_caches_from_a_mean_pooled_checkpoint_into_a_grid_pooled_config(setup, tmp_path):
    """Two archives' caches train together (the card lists both); --init of a pool="mean" checkpoint into
    a pool="grid" config spreads the token weights, so with lr 0 the two embed the same studies alike."""
    import numpy as np
    from cmr_search.model import load_checkpoint
    from cmr_search.model.training.data import CacheDataset
    from cmr_search.model.embed import embed_clips
    cache, cfg = setup
    other = make_fake_cache(tmp_path / "site-b", n=12, seed=1)
    base = tmp_path / "base"
    assert _train(cache, cfg, base, "--epochs", "1") == 0
    grid = json.loads(cfg.read_text())
    grid["video"] = {**grid["video"], "pool": "grid", "pool_grid": 2}
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    ft = tmp_path / "ft"
    from cmr_search.model.training.run import main
    assert main(["--cache", str(cache), str(other), "--config", str(tmp_path / "grid.json"), "--out", str(ft),
                 "--batch", "8", "--epochs", "1", "--max-steps", "1", "--lr", "0", "--init", str(base),
                 "--wording", "all", "--no-progress"]) == 0
    card = json.loads((ft / "card.json").read_text())
    assert card["data"]["cache"] == [str(cache.resolve()), str(other.resolve())]
    assert card["data"]["n_studies"] + card["data"]["holdout"]["n_held_out"] == 52
    a, b = load_checkpoint(base), load_checkpoint(ft)
    assert b.cfg.video.pool == "grid" and a.cfg.video.pool == "mean"
    ds = CacheDataset(other, a.clip_spec)
    np.testing.assert_allclose(embed_clips(b, ds.eval_batches(8)), embed_clips(a, ds.eval_batches(8)), atol=1e-5)


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(setup, tmp_path):
    """The issue's acceptance point: one epoch with 2 CPU processes (gloo) vs 1 process, same seed."""
    cache, cfg = setup
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--cache", str(cache), "--config", str(cfg), "--batch", "8", "--epochs", "1", "--seed", "0",
              "--view-dropout", "0", "--wording", "all", "--no-progress", "--log-every", "1",
              "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={port}", "-m", "cmr_search.model.training.run", *common, "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "cmr_search.model.training.run", *common, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert one.returncode == 0, one.stderr[-3000:]

    def losses(run):
        rows = [json.loads(x) for x in (tmp_path / run / "train" / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if "loss" in r]
    a, b = losses("ddp"), losses("one")
    assert len(a) == len(b) == 3                                     # 31 training studies // batch 8
    # Step 1 (before any update): the same studies in the same global batch, to float rounding. Later steps:
    # Adam turns the two layouts' last-digit differences (2 x 4 vs 1 x 8 rows through oneDNN) into up to
    # 0.4 % by step 3 on some CPUs; a batch of other studies differs by far more (steps differ by 4-6 %).
    assert a[0] == pytest.approx(b[0], rel=1e-4), (a, b)
    assert a == pytest.approx(b, rel=1e-2), (a, b)
    cd, co = (json.loads((tmp_path / r / "card.json").read_text()) for r in ("ddp", "one"))
    assert cd["schedule"]["world_size"] == 2 and co["schedule"]["world_size"] == 1
    assert cd["epoch_losses"][0]["epoch_loss"] == pytest.approx(co["epoch_losses"][0]["epoch_loss"], rel=1e-2)

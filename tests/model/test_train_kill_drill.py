"""kill -9 drill of `cmr train` (issue 7): 10 seeded trials on the cache of a small SYNTHETIC phantom
archive. Each trial SIGKILLs `python -m cmr_search.ui.cli train` at a random point (kill_drill.py in tests/indexer),
re-runs it with --resume and checks: the schedule reaches total_steps with one final checkpoint (OUT/, no
OUT/train/final left), the weights equal those of one uninterrupted run, and metrics.jsonl holds each step
exactly once (model.training.trainer.trim_metrics drops the lines logged after the last saved state). A failing trial
names its seed and kill point; replay it with CMR_DRILL_SEED=<seed>.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.kill_drill import TRIALS, Job, drill_seed, kill_at, trial_rng  # noqa: E402

from tests.helpers.cache_helpers import write_small_config  # noqa: E402

N_STUDIES = 8
EPOCHS, BATCH = 10, 4
TOTAL = EPOCHS * (N_STUDIES // BATCH)          # 20 optimizer steps
CKPT_EVERY = 3


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A SYNTHETIC archive, its cache (`cmr prepare`) and one uninterrupted `cmr train` run (in-process)."""
    from cmr_search.phantom.generate import generate_archive
    from cmr_search.ui.prepare_cmd import main as prepare_main
    from cmr_search.ui.train_cmd import main as train_main
    root = tmp_path_factory.mktemp("train-drill")
    generate_archive(root / "arch", N_STUDIES, "tiny", seed=11, workers=1)
    assert prepare_main([str(root / "arch"), "--out", str(root / "cache"), "--salt-file", str(root / "salt"),
                         "--no-progress"]) == 0
    drill = {"root": root, "cache": root / "cache", "config": write_small_config(root / "small.json")}
    assert train_main(_args(drill, root / "clean")) == 0
    drill["weights"] = _weights(root / "clean")
    return drill


def _args(drill, out: Path) -> list[str]:
    return ["--cache", str(drill["cache"]), "--config", str(drill["config"]), "--out", str(out),
            "--epochs", str(EPOCHS), "--batch", str(BATCH), "--holdout", "0", "--wording", "all",
            "--log-every", "1", "--ckpt-every", str(CKPT_EVERY), "--threads", "1", "--no-progress"]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(out / "model.safetensors"))


def _loss_steps(out: Path) -> list[int]:
    path = out / "train" / "metrics.jsonl"
    return [json.loads(x)["step"] for x in path.read_text().splitlines() if '"loss"' in x] if path.exists() else []


def _lines_logged(out: Path) -> int:
    """Complete loss lines so far (the job may be writing the next one)."""
    path = out / "train" / "metrics.jsonl"
    return path.read_text().count('"loss"') if path.exists() else 0


def _check_killed(out: Path, where: str) -> None:
    """What a kill leaves: a resumable state that loads (or none yet), a readable args.json."""
    state = out / "train" / "last" / "state.pt"
    if state.exists():
        assert 0 < torch.load(state, map_location="cpu", weights_only=False)["step"] <= TOTAL, where
    if (out / "train" / "args.json").exists():
        json.loads((out / "train" / "args.json").read_text())


def _check_complete(out: Path, clean, where: str) -> None:
    card = json.loads((out / "card.json").read_text())
    assert card["schedule"]["steps"] == card["schedule"]["total_steps"] == TOTAL, where
    assert not (out / "train" / "final").exists(), f"a second final checkpoint was left; {where}"
    assert torch.load(out / "train" / "last" / "state.pt", weights_only=False)["step"] == TOTAL, where
    assert _loss_steps(out) == list(range(1, TOTAL + 1)), f"metrics steps {_loss_steps(out)}; {where}"
    rows = [json.loads(x) for x in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "epoch" in r] == list(range(1, EPOCHS + 1)), where
    got, want = _weights(out), clean["weights"]
    assert got.keys() == want.keys(), where
    # atol 1e-4: the frozen text features are cached per text, and a resumed run encodes them in other
    # batches (other padding), which moves floats by ~1e-5; a wrong resume (RNG, data order, optimizer
    # state) moves weights by orders of magnitude more.
    bad = [k for k in want if not torch.allclose(got[k], want[k], atol=1e-4)]
    assert not bad, f"weights differ from an uninterrupted run ({bad[:3]}, max abs diff {max(float((got[k] - want[k]).abs().max()) for k in bad):.2e}); {where}"


@pytest.mark.slow
def test_kill_train_drill(clean):
    from cmr_search.ui.train_cmd import main as train_main
    mid_run = 0
    for trial in range(TRIALS):
        rng = trial_rng("train", trial)
        out = clean["root"] / f"train-{trial}"
        job = Job(["train", *_args(clean, out)])
        point = kill_at(job, rng, lambda: _lines_logged(out), TOTAL, 12.0)
        where = f"seed {drill_seed()} trial {trial}: kill at {point}\n{job.tail()}"
        mid_run += "mid-run" in point
        print(where.splitlines()[0])                 # shown by pytest when a trial fails
        _check_killed(out, where)
        assert train_main(_args(clean, out) + ["--resume"]) == 0, where
        _check_complete(out, clean, where)
    assert mid_run >= TRIALS // 3, f"only {mid_run} of {TRIALS} kills landed mid-run"

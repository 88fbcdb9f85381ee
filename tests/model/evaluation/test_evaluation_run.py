"""The evaluation run (model.evaluation.run, what `cmr eval` runs): typed errors instead of exit codes,
the hold-out selection of a checkpoint's card."""
import json

import numpy as np
import pytest

from cmr_search.model.checkpoint import save_checkpoint
from cmr_search.model.errors import DataError, RunUsageError
from cmr_search.model.evaluation.run import EvalOptions, eval_mask_for, run
from cmr_search.model.model import CMRClip
from cmr_search.model.training.data import CacheDataset, holdout_mask
from tests.helpers.cache_helpers import make_fake_cache
from tests.helpers.model_helpers import small_config


def test_errors_are_typed(tmp_path):
    with pytest.raises(RunUsageError, match="not found"):
        run(EvalOptions(cache=str(tmp_path / "none"), checkpoint="cmr-tiny"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="studies.parquet"):
        run(EvalOptions(cache=str(tmp_path / "empty"), checkpoint="cmr-tiny"))


def test_mask_follows_the_card_and_the_keys_file(tmp_path):
    ds = CacheDataset(make_fake_cache(tmp_path / "cache", n=20), small_config().clip_spec())
    card = {"data": {"holdout": {"fraction": 0.5, "salt": "s"}}}
    mask, how = eval_mask_for(ds, card, None)
    assert np.array_equal(mask, holdout_mask(ds.keys, 0.5, "s")) and how["method"] == "checkpoint hold-out"
    (tmp_path / "keys.txt").write_text(f"{ds.keys[0]}\n{ds.keys[3]}\n")
    mask, how = eval_mask_for(ds, card, str(tmp_path / "keys.txt"))
    assert mask.sum() == 2 and how["method"] == "keys file"


def test_run_writes_the_report_and_updates_the_card(tmp_path):
    cache = make_fake_cache(tmp_path / "cache", n=24)
    ckpt = save_checkpoint(CMRClip(small_config()), tmp_path / "ckpt", card={"note": "untrained"})
    res = run(EvalOptions(cache=str(cache), checkpoint=str(ckpt), episodes=2, folds=2, progress=False,
                          update_card=True))
    assert res.json_path == ckpt / "eval" / "eval.json" and res.md_path.exists()
    assert json.loads(res.json_path.read_text())["n_evaluated"] == res.report["n_evaluated"] >= 1
    assert "eval" in json.loads((ckpt / "card.json").read_text())

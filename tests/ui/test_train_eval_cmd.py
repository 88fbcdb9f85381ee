"""`cmr train` and `cmr eval` on the command line: bad usage, `cmr eval` end to end on a small fake cache
(16-frame 32-px cmr-tiny), the command list. The training run itself is tested in
tests/model/training/test_training_run.py."""
import json

import pytest

from tests.helpers.cache_helpers import make_fake_cache, write_small_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmd")
    return make_fake_cache(d / "cache", n=40), write_small_config(d / "small.json")


def test_bad_usage(tmp_path):
    from cmr_search.ui.train_cmd import main as train
    from cmr_search.ui.eval_cmd import main as evaluate
    assert train(["--cache", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert train([]) == 2
    assert train(["--cache", str(tmp_path), "--out", str(tmp_path / "o"), "--text-variants", "-1"]) == 2
    assert evaluate(["--cache", str(tmp_path / "none"), "--checkpoint", "x"]) == 2


def test_eval_fresh_model_end_to_end(setup, tmp_path):
    cache, _ = setup
    from cmr_search.model.model import CMRClip
    from cmr_search.model.checkpoint import save_checkpoint
    from tests.helpers.model_helpers import small_config
    ckpt = save_checkpoint(CMRClip(small_config()), tmp_path / "fresh", card={"note": "untrained"})
    from cmr_search.ui.eval_cmd import main
    rc = main(["--cache", str(cache), "--checkpoint", str(ckpt), "--episodes", "3", "--no-progress",
               "--update-card"])
    assert rc == 0
    res = json.loads((ckpt / "eval" / "eval.json").read_text())
    assert res["kind"] == "evaluation" and res["selection"]["method"].startswith("default hold-out")
    assert set(res["groups"]) <= {"train", "test"} and res["n_evaluated"] >= 2
    g = next(iter(res["groups"].values()))
    assert {"retrieval", "zero_shot", "few_shot", "linear_probe"} <= set(g)
    assert (ckpt / "eval" / "eval.md").read_text().startswith("# Evaluation")
    assert "ICM" in json.loads((ckpt / "card.json").read_text())["eval"]["prompts"]["diagnosis"]
    keys = tmp_path / "keys.txt"
    keys.write_text("\n".join(f"k0_{i:04d}" for i in range(0, 40, 2)))
    assert main(["--cache", str(cache), "--checkpoint", str(ckpt), "--keys", str(keys), "--episodes", "2",
                 "--out", str(tmp_path / "ev2"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "ev2" / "eval.json").read_text())["n_evaluated"] == 20


def test_cli_lists_train_and_eval(capsys):
    from cmr_search.ui.cli import main
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "eval" in out

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


def test_eval_acdc_folder_end_to_end(tmp_path, monkeypatch):
    """`cmr eval --acdc`: a generated ACDC-layout folder (two groups) -> eval_real.json/md, card merged."""
    from cmr_search.model.checkpoint import save_checkpoint
    from cmr_search.model.model import CMRClip
    from cmr_search.ui.eval_cmd import main
    from tests.helpers.model_helpers import small_config
    from tests.indexer.test_nifti import _patient
    for n in range(1, 9):
        _patient(tmp_path / "acdc", n, "DCM" if n % 2 else "NOR", four_d=n < 3)
    ckpt = save_checkpoint(CMRClip(small_config()), tmp_path / "fresh", card={"note": "untrained"})
    args = ["--acdc", str(tmp_path / "acdc"), "--checkpoint", str(ckpt), "--salt-file", str(tmp_path / "salt"),
            "--repeats", "2", "--no-progress", "--update-card"]
    assert main(args) == 0
    res = json.loads((ckpt / "eval" / "eval_real.json").read_text())
    assert res["n"] == 8 and res["groups"] == {"DCM": 4, "NOR": 4} and res["probe"]["repeats"] == 2
    assert set(res["zero_shot"]) == {"DCM", "NOR"} and 0 <= res["study_to_study"]["mean"] <= 1
    assert "eval_real" in json.loads((ckpt / "card.json").read_text())
    assert sorted(p.name for p in (ckpt / "eval").iterdir()) == ["eval_real.json", "eval_real.md"]
    assert main(["--acdc", str(tmp_path), "--checkpoint", str(ckpt)]) == 2      # not an ACDC folder

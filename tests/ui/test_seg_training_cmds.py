"""`cmr synth seg` and `cmr train --task seg`: synthetic slices in, a loadable segmenter checkpoint out;
bad input gets a message and an exit code."""
from cmr_search.model.segmentation import Segmenter
from cmr_search.ui.cli import main as cmr


def test_synth_seg_then_train_seg_writes_a_checkpoint(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "ck"
    assert cmr(["synth", "seg", "--hearts", "2", "--per-heart", "3", "--out", str(data)]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert cmr(["train", "--task", "seg", "--data", str(data), "--out", str(out), "--config", "seg-unet-tiny",
                "--steps", "3", "--batch", "2", "--warmup", "1", "--threads", "1"]) == 0
    assert Segmenter.load(out).card["slices"] == 6


def test_train_seg_errors_name_the_problem(tmp_path, capsys):
    assert cmr(["train", "--task", "seg", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no shard-*.npz" in capsys.readouterr().err
    assert cmr(["train", "--task", "seg", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                "--steps", "0"]) == 2
    assert cmr(["synth", "seg", "--hearts", "0", "--out", str(tmp_path / "x")]) == 2
    assert cmr(["synth", "seg", "--hearts", "1", "--lv-variety", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "--lv-variety" in capsys.readouterr().err


def test_synth_seg_records_the_shape_shares(tmp_path):
    import json
    data = tmp_path / "data"
    assert cmr(["synth", "seg", "--hearts", "1", "--per-heart", "2", "--rv-variety", "1", "--lv-variety", "1",
                "--es-share", "0.5", "--out", str(data)]) == 0
    scene = json.loads((data / "recipe.json").read_text())["scene"]
    assert scene["rv_variety"] == 1.0 and scene["lv_variety"] == 1.0 and scene["es_share"] == 0.5


def test_synth_seg_passes_every_scene_option_and_refuses_one_out_of_range(tmp_path, capsys):
    import json
    from cmr_search.ui.synth_seg_cmd import SCENE_OPTIONS
    data = tmp_path / "data"
    argv = ["synth", "seg", "--hearts", "1", "--per-heart", "1", "--out", str(data)]
    for i, flag in enumerate(SCENE_OPTIONS):
        argv += [flag, str(0.1 + 0.1 * i)]
    assert cmr(argv) == 0
    scene = json.loads((data / "recipe.json").read_text())["scene"]
    assert [round(scene[field], 3) for field, *_ in SCENE_OPTIONS.values()] == \
        [round(0.1 + 0.1 * i, 3) for i in range(len(SCENE_OPTIONS))]
    capsys.readouterr()
    assert cmr(["synth", "seg", "--out", str(tmp_path / "x"), "--min-blood-contrast", "1.5"]) == 2
    assert "--min-blood-contrast" in capsys.readouterr().err and not (tmp_path / "x").exists()

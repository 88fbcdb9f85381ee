"""model.segmentation.soup: a weight average of checkpoints of one config, written as a checkpoint."""
import pytest
import torch

from cmr_search.model.errors import CheckpointError
from cmr_search.model.segmentation import Segmenter
from cmr_search.model.segmentation.soup import average, main


def test_soup_is_the_weighted_mean_and_a_loadable_checkpoint(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    Segmenter.untrained(seed=1).save(a, {"trained_on": "synthetic only"})
    Segmenter.untrained(seed=2).save(b, {"trained_on": "synthetic only"})
    assert main([str(a), str(b), "--out", str(tmp_path / "soup"), "--weights", "0.25,0.75"]) == 0
    soup = Segmenter.load(tmp_path / "soup")
    sa, sb, ss = (Segmenter.load(f).net.state_dict() for f in (a, b, tmp_path / "soup"))
    for k, v in ss.items():
        want = 0.25 * sa[k].double() + 0.75 * sb[k].double() if v.is_floating_point() else sb[k]
        assert torch.allclose(v.double(), want.to(torch.float64), atol=1e-6), k
    assert soup.card["recipe"]["weights"] == [0.25, 0.75] and len(soup.card["ingredients"]) == 2
    assert soup.fingerprint not in (Segmenter.load(a).fingerprint, Segmenter.load(b).fingerprint)


def test_soup_refuses_other_configs_bad_weights_and_one_folder(tmp_path, capsys):
    Segmenter.untrained(seed=1).save(tmp_path / "tiny")
    Segmenter.untrained("seg-unet-small", seed=1).save(tmp_path / "small")
    with pytest.raises(CheckpointError, match="different configs"):
        average([tmp_path / "tiny", tmp_path / "small"])
    with pytest.raises(CheckpointError, match="summing to 1"):
        average([tmp_path / "tiny", tmp_path / "tiny"], [0.5, 0.6])
    assert main([str(tmp_path / "tiny"), "--out", str(tmp_path / "o")]) == 2
    assert "at least two" in capsys.readouterr().err

"""--checkpoint and --untrained of `cmr index` and `cmr search`: a config name needs --untrained (exit 2
naming the flag), a folder that is no checkpoint is named with what it lacks (exit 1)."""
from __future__ import annotations

import pytest

from cmr_search.indexer import prepare as prepare_module
from cmr_search.search import Store
from cmr_search.ui import index_cmd
from cmr_search.ui.cli import main
from tests.helpers.dicom_fixtures import write_study


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.setattr(prepare_module, "load_segmenter", lambda segmenter=None: None)
    for var in ("CMR_CHECKPOINT", "QDRANT_URL", "CMR_DATA"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def arch(tmp_path_factory):
    root = tmp_path_factory.mktemp("flags")
    write_study(root / "arch", "s0", n_slices=4, n_phases=4, heart_slices=(1, 2))
    return root / "arch"


def _index(capsys, arch, data, *extra):
    rc = index_cmd.main([str(arch), "--data", str(data), "--salt-file", str(data.parent / "salt"),
                         "--no-progress", *extra])
    return rc, capsys.readouterr().err


def test_index_config_name_needs_untrained(arch, tmp_path, capsys):
    rc, err = _index(capsys, arch, tmp_path / "d", "--checkpoint", "cmr-tiny")
    assert rc == 2 and "cmr index: --checkpoint cmr-tiny is a model config name" in err and "Add --untrained" in err
    assert not (tmp_path / "d" / "index").exists()                   # refused before anything was indexed


def test_index_folder_without_weights_is_named(arch, tmp_path, capsys):
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text("{}")
    rc, err = _index(capsys, arch, tmp_path / "d", "--checkpoint", str(half))
    assert rc == 1 and f"{half} has config.json but no model.safetensors or pytorch_model.bin" in err


def test_search_config_name_needs_untrained(tmp_path, capsys):
    with Store.open(tmp_path / "d", dim=256):
        pass
    rc = main(["search", "dilated lv", "--data", str(tmp_path / "d"), "--checkpoint", "cmr-tiny", "--mode", "image"])
    err = capsys.readouterr().err
    assert rc == 2 and "cmr search: --checkpoint cmr-tiny is a model config name" in err and "--untrained" in err
    with pytest.warns(UserWarning, match="is a model config, not a trained checkpoint"):
        rc = main(["search", "dilated lv", "--data", str(tmp_path / "d"), "--checkpoint", "cmr-tiny", "--untrained",
                   "--mode", "image"])
    assert rc == 0, capsys.readouterr().err

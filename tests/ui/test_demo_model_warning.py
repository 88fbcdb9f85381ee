"""A model trained on synthetic phantoms only (card `demonstration_only`) that indexes studies that are not
synthetic: `cmr index` warns with the next step, records it in DATA/model/card.json, and the workbench's
banner (ui/app/screens/about.demo_model_banner) says so."""
from __future__ import annotations

import json

import polars as pl
import pytest

from cmr_search.indexer import prepare as prepare_module
from cmr_search.indexer.model_source import DEMO_ON_REAL, check_demo_model, real_studies
from cmr_search.model.checkpoint import SHIPPED_CHECKPOINTS
from cmr_search.search.data_folder import DataFolder
from cmr_search.ui import index_cmd
from cmr_search.ui.app.screens.about import demo_model_banner
from tests.helpers.dicom_fixtures import write_study

DEMO = SHIPPED_CHECKPOINTS / "cmr-tiny-phantom"


def _data(tmp_path, labels: list, demo: bool = True):
    """DATA with a studies.parquet of len(labels) studies (None = not synthetic) and a DATA/model card."""
    folder = DataFolder(tmp_path / "data")
    folder.studies_table.parent.mkdir(parents=True)
    pl.DataFrame({"study_key": [f"s{i}" for i in range(len(labels))], "label": labels,
                  "split": [None if x is None else "train" for x in labels]},
                 schema={"study_key": pl.Utf8, "label": pl.Utf8, "split": pl.Utf8}).write_parquet(folder.studies_table)
    folder.model.mkdir(parents=True)
    (folder.model / "card.json").write_text(json.dumps({"demonstration_only": demo, "source": "ckpt/demo"}))
    return folder


def _card(folder) -> dict:
    return json.loads((folder.model / "card.json").read_text())


def test_demo_model_on_real_studies_is_recorded_and_cleared(tmp_path):
    folder = _data(tmp_path, ["NORMAL", None, None])
    assert real_studies(folder.studies_table) == (2, 3)
    note = check_demo_model(folder.root)
    assert "trained on synthetic phantom studies only" in note and "2 of 3 studies" in note
    assert "cmr train --cache" in note and "published CMR-CLIP" in note
    assert _card(folder)[DEMO_ON_REAL] == {"real_studies": 2, "studies": 3}
    pl.DataFrame({"study_key": ["s0"], "label": ["HCM"], "split": ["test"]}).write_parquet(folder.studies_table)
    assert check_demo_model(folder.root) is None and DEMO_ON_REAL not in _card(folder)   # all synthetic now


def test_a_model_not_marked_demonstration_only_is_not_flagged(tmp_path):
    folder = _data(tmp_path, [None, None], demo=False)
    assert check_demo_model(folder.root) is None and DEMO_ON_REAL not in _card(folder)
    assert check_demo_model(tmp_path / "no-such-data") is None


def test_banner_decision():
    assert demo_model_banner(None) is None and demo_model_banner({"demonstration_only": True}) is None
    text = demo_model_banner({DEMO_ON_REAL: {"real_studies": 5, "studies": 7}})
    assert text.startswith("Demonstration model") and "5 of its 7 studies are not synthetic" in text
    assert "cmr train" in text and "--checkpoint DIR" in text


@pytest.mark.skipif(not (DEMO / "model.safetensors").exists(), reason=f"no shipped checkpoint {DEMO}")
def test_cmr_index_warns_on_a_non_synthetic_archive(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(prepare_module, "load_segmenter", lambda segmenter=None: None)   # no measurements
    monkeypatch.delenv("CMR_CHECKPOINT", raising=False)
    monkeypatch.delenv("QDRANT_URL", raising=False)
    write_study(tmp_path / "arch", "s0", n_slices=5, n_phases=8, heart_slices=(1, 3))   # no study.json: real
    data = tmp_path / "data"
    rc = index_cmd.main([str(tmp_path / "arch"), "--data", str(data), "--checkpoint", str(DEMO),
                         "--salt-file", str(tmp_path / "salt"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (f"cmr index: WARNING: the model this index was built with ({DEMO}) was trained on synthetic "
            "phantom studies only") in err
    assert "1 of 1 studies" in err and "`cmr train --cache" in err and "--checkpoint DIR" in err
    card = json.loads((data / "model" / "card.json").read_text())
    assert demo_model_banner(card) is not None

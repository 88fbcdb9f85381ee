"""indexer.model_source.resolve_model: nothing found is an error that says how to proceed; --untrained is
the only way to an untrained model."""
from __future__ import annotations

import pytest

from cmr_search.indexer.model_source import UntrainedModelWarning, resolve_model
from cmr_search.model import checkpoint as checkpoint_module
from cmr_search.model.errors import CheckpointError


def test_nothing_found_is_an_error_naming_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "SHIPPED_CHECKPOINTS", tmp_path / "none-shipped")
    with pytest.raises(CheckpointError, match=r"no model checkpoint found \(looked at: .*none-shipped\)\. Pass "
                                              r"--checkpoint DIR.*add --untrained"):
        resolve_model(None, data_model=tmp_path / "data" / "model", environ={})
    with pytest.warns(UntrainedModelWarning, match=r"untrained cmr-tiny \(seed 0\), as asked \(--untrained\)"):
        model, source = resolve_model(None, data_model=tmp_path / "data" / "model", environ={}, untrained=True)
    assert source == "fresh cmr-tiny (seed 0, untrained)" and model.cfg.name == "cmr-tiny"

"""model/query_onnx.py: the ONNX Runtime query forward is NumpyBert's, and the runtime choice holds."""
import logging

import numpy as np
import pytest

from cmr_search.model import query_text
from cmr_search.model.query_text import NumpyBert, minilm, runtime, set_runtime

pytest.importorskip("onnxruntime")
QUERIES = ["dilated LV with reduced EF", "Amyloid LGE pattern; no septal hypertrophy.", "x " * 300, "é ✓ ß", ""]


@pytest.fixture
def fresh_runtime(monkeypatch):
    monkeypatch.delenv(query_text.RUNTIME_ENV, raising=False)
    yield
    set_runtime(None)
    query_text.default_runtime("auto")


def test_onnx_forward_gives_the_numpy_features():
    from cmr_search.model.query_onnx import OnnxForward
    bert = minilm()
    fast = OnnxForward(bert)
    for q in QUERIES:                       # short, truncated at 256 tokens, non-ASCII, empty
        np.testing.assert_allclose(fast([q]), bert._forward_numpy([q]), atol=2e-6)
    np.testing.assert_allclose(fast(QUERIES), bert._forward_numpy(QUERIES), atol=2e-6)     # packed in one run


def test_runtime_comes_from_set_runtime_then_the_environment(fresh_runtime, monkeypatch):
    assert runtime() == "auto"
    monkeypatch.setenv(query_text.RUNTIME_ENV, "numpy")
    assert runtime() == "numpy"
    set_runtime("onnx")
    assert runtime() == "onnx"
    with pytest.raises(ValueError, match="expected one of auto, numpy, onnx"):
        set_runtime("tensorrt")


def test_numpy_runtime_never_builds_the_session(fresh_runtime):
    bert = NumpyBert(minilm().folder)
    set_runtime("numpy")
    bert.pooled(["dilated LV 1"])
    assert bert._onnx is None                       # not built: no set-up cost for a one-query command
    set_runtime("auto")
    bert.pooled(["dilated LV 2"])
    assert bert._onnx                               # built at the first query after


def test_a_runtime_that_fails_falls_back_to_numpy(fresh_runtime, monkeypatch, caplog):
    import cmr_search.model.query_onnx as qo

    def broken(_bert):
        raise RuntimeError("no MLAS today")
    monkeypatch.setattr(qo, "OnnxForward", broken)
    bert = NumpyBert(minilm().folder)
    set_runtime("onnx")
    with caplog.at_level(logging.WARNING):
        got = bert.pooled(["septal hypertrophy"])
    np.testing.assert_allclose(got, bert._forward_numpy(["septal hypertrophy"]), atol=1e-6)
    assert bert._onnx is False and "no MLAS today" in caplog.text


def test_one_query_commands_keep_numpy(fresh_runtime):
    import argparse
    from cmr_search.ui.search_cmd import run
    seen = []
    assert run("cmr search", [], argparse.ArgumentParser, lambda args: seen.append(runtime())) == 0
    assert seen == ["numpy"]

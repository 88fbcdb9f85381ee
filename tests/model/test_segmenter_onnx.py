"""model.segmentation.onnx_net: the U-Net on ONNX Runtime gives torch's outputs; the runtime is chosen
by $CMR_SEG_RUNTIME and a runtime that cannot be built falls back (auto) or fails (onnx) clearly."""
import numpy as np
import pytest
import torch

from cmr_search.model.segmentation import Segmenter, onnx_net
from cmr_search.model.segmentation.network import UNet


def _image_stack(n=6, h=52, w=70):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < 120).astype(np.float32)
    return (disc[None] * rng.uniform(0.5, 1.5, (n, 1, 1)) + rng.normal(0, 0.1, (n, h, w))).astype(np.float32)


def test_onnx_forward_equals_torch_for_any_batch_and_image_size():
    seg = Segmenter.untrained(seed=2)
    net = onnx_net.OnnxNet(seg.net)
    for shape in ((1, 1, 32, 48), (5, 1, 64, 16)):
        x = torch.randn(*shape)
        with torch.inference_mode():
            want = seg.net(x)
        assert torch.allclose(net(x), want, atol=1e-4), shape


def test_segmenter_probabilities_and_masks_agree_between_runtimes(monkeypatch):
    x = _image_stack()
    out = {}
    for name in ("torch", "onnx"):
        monkeypatch.setenv(onnx_net.ENV, name)
        seg = Segmenter.untrained(seed=4)
        seg.cfg.tta = 2
        out[name] = seg.probabilities(x, (1.7, 1.7))
        assert isinstance(seg.forward, onnx_net.OnnxNet) == (name == "onnx")
    assert np.abs(out["torch"] - out["onnx"]).max() < 1e-4


def test_auto_is_onnx_on_the_cpu_and_a_bad_name_or_failure_is_clear(monkeypatch):
    monkeypatch.delenv(onnx_net.ENV, raising=False)
    assert onnx_net.runtime() == "auto"
    assert isinstance(onnx_net.build(UNet([4, 8], 4), torch.device("cpu")), onnx_net.OnnxNet)
    monkeypatch.setenv(onnx_net.ENV, "tensorrt")
    with pytest.raises(ValueError, match="CMR_SEG_RUNTIME"):
        onnx_net.runtime()

    def broken(net, threads=None):
        raise ImportError("no onnxruntime here")
    monkeypatch.setattr(onnx_net, "OnnxNet", broken)
    net = UNet([4, 8], 4)
    with pytest.warns(RuntimeWarning, match="running torch"):
        assert onnx_net.build(net, torch.device("cpu"), "auto") is net
    with pytest.raises(RuntimeError, match="cannot run on ONNX Runtime"):
        onnx_net.build(net, torch.device("cpu"), "onnx")
    assert onnx_net.build(net, torch.device("cpu"), "torch") is net


def test_a_worker_builds_its_own_runtime_with_its_thread_count():
    from cmr_search.indexer.measurements import init_worker
    seg = Segmenter.untrained(seed=5)
    seg.probabilities(_image_stack(2), (2.0, 2.0))
    first = seg.forward
    threads = torch.get_num_threads()
    try:
        init_worker(seg, threads=1)
        assert "forward" not in seg.__dict__
        seg.probabilities(_image_stack(2), (2.0, 2.0))
        assert seg.forward is not first
    finally:
        torch.set_num_threads(threads)

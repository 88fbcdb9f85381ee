"""The segmenter's U-Net run by ONNX Runtime on the CPU: same weights, same outputs (logits within
1e-4 of torch's), 2-3x faster than torch's CPU convolutions on this machine's 2 cores
(`python -m bench.real_measure` reports both, see docs/segmentation.md).

The graph is the torch network exported in memory (torch.onnx, TorchScript exporter, dynamic batch and
image size), so there is no second copy of the weights to keep in step and nothing is downloaded; the
export costs about a second once per process. Which runtime a Segmenter uses is `runtime()`:
$CMR_SEG_RUNTIME = auto (ONNX Runtime on the CPU when it can be built, torch on a GPU) | torch | onnx.
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch

ENV = "CMR_SEG_RUNTIME"
RUNTIMES = ("auto", "torch", "onnx")


def runtime() -> str:
    """$CMR_SEG_RUNTIME, checked (auto when unset)."""
    name = (os.environ.get(ENV) or "auto").strip().lower()
    if name not in RUNTIMES:
        raise ValueError(f"${ENV}={name!r} is not a segmenter runtime; choose one of {list(RUNTIMES)}")
    return name


class OnnxNet:
    """Callable like the U-Net ((B, 1, H, W) float tensor -> (B, C, H, W) logits), run by ONNX Runtime
    with the torch thread count of the process at build time."""

    def __init__(self, net: torch.nn.Module, threads: int | None = None):
        import onnxruntime as ort                    # the runtime only where it is used
        self.multiple = net.multiple
        buf = io.BytesIO()
        example = torch.zeros(1, 1, 4 * self.multiple, 4 * self.multiple)
        axes = {0: "batch", 2: "height", 3: "width"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # the exporter's notes on its own future
            torch.onnx.export(net.eval(), (example,), buf, dynamo=False, input_names=["image"],
                              output_names=["logits"], dynamic_axes={"image": axes, "logits": axes},
                              opset_version=17)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        image = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"image": image})[0])


def build(net: torch.nn.Module, device: torch.device, name: str | None = None):
    """The forward a Segmenter runs: `net` itself (torch) or an OnnxNet. auto picks ONNX Runtime on the
    CPU and falls back to torch with a warning when it cannot be built; `onnx` asked for on a GPU or
    failing to build is an error."""
    name = name or runtime()
    if name == "torch" or (name == "auto" and device.type != "cpu"):
        return net
    if device.type != "cpu":
        raise ValueError(f"${ENV}=onnx runs on the CPU only; this segmenter is on {device}")
    try:
        return OnnxNet(net)
    except Exception as e:                           # noqa: BLE001 - any failure to build: report, fall back
        if name == "onnx":
            raise RuntimeError(f"the segmenter cannot run on ONNX Runtime: {e}") from e
        warnings.warn(f"segmenter: ONNX Runtime unavailable ({e}); running torch", RuntimeWarning, stacklevel=2)
        return net

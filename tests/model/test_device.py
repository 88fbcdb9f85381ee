"""model.device.pick_device: the one place that chooses CPU or GPU."""
import pytest
import torch

from cmr_search.model.device import pick_device


def test_explicit_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(None).type == want and pick_device("auto").type == want


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_asked_for_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")

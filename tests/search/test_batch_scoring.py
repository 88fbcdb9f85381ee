import numpy as np
import pytest

from cmr_search.search.batch_scoring import engine, similarity, top_k


def test_engine_is_known():
    assert engine() in ("faiss-gpu", "torch-cuda", "faiss-cpu", "numpy")


@pytest.mark.parametrize("use", ["numpy", "faiss-cpu"])
def test_engines_agree_with_matmul(use):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(7, 16))
    np.testing.assert_allclose(similarity(a, b, use=use), a @ b.T, rtol=1e-4, atol=1e-4)
    s, i = top_k(a, b, 3, use=use)
    np.testing.assert_array_equal(i, np.argsort(-(a @ b.T), axis=1)[:, :3])
    assert s.shape == (50, 3)


def test_top_k_caps_k_and_handles_empty():
    s, i = top_k(np.ones((2, 4)), np.ones((1, 4)), 5)
    assert s.shape == i.shape == (2, 1)
    s, i = top_k(np.ones((0, 4)), np.ones((3, 4)), 2)
    assert s.shape == (0, 2)

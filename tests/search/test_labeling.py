"""search/labeling.py: the zero-shot scores are one plain matrix product (no index)."""
import numpy as np

from cmr_search.search.labeling import similarity


def test_similarity_is_the_matrix_product():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(7, 16))
    s = similarity(a, b)
    assert s.shape == (50, 7) and s.dtype == np.float32
    np.testing.assert_allclose(s, a @ b.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.argsort(-s, axis=1)[:, :3], np.argsort(-(a @ b.T), axis=1)[:, :3])


def test_similarity_of_lists_and_empty():
    assert similarity([[1.0, 0.0]], [[0.5, 0.5], [1.0, 1.0]]).tolist() == [[0.5, 1.0]]
    assert similarity(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)

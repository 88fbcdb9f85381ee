"""search/neighbours.py: exact all-pairs kNN (faiss and the numpy floor agree with brute force), near
duplicates, no self pairs, deterministic ties, empty and one-study inputs; Client.near_duplicates."""
import importlib.util
import warnings

import numpy as np
import pytest

from cmr_search.search.neighbours import (ENGINES, NeighboursTruncatedWarning, engine, knn, near_duplicate_pairs,
                                          neighbour_table, normalise, top_k)

# faiss-cpu (a dev dependency): faiss's code path without a GPU; torch-cpu: the torch-cuda code path on the CPU
CPU = ["numpy", "torch-cpu"] + (["faiss-cpu"] if importlib.util.find_spec("faiss") else [])


def _unit(n, d=16, seed=0):
    return normalise(np.random.default_rng(seed).normal(size=(n, d)))


def _brute(v, k):
    s = v @ v.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), idx


def test_engine_is_known():
    assert engine() in ENGINES


@pytest.mark.parametrize("use", CPU)
def test_knn_matches_brute_force(use):
    v = _unit(300)
    s, i = knn(v, 7, use=use)
    bs, bi = _brute(v, 7)
    assert s.shape == i.shape == (300, 7) and i.dtype == np.int64
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, bs, atol=1e-5)
    assert not (i == np.arange(300)[:, None]).any()                  # never its own neighbour


def test_numpy_floor_in_small_blocks(monkeypatch):
    import cmr_search.search.neighbours as nb
    monkeypatch.setattr(nb, "BLOCK_CELLS", 1000)                       # 3 query rows per block
    v = _unit(333)
    np.testing.assert_array_equal(knn(v, 5, use="numpy")[1], _brute(v, 5)[1])


@pytest.mark.parametrize("use", CPU)
def test_top_k_caps_k_and_handles_empty(use):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(7, 16))
    s, i = top_k(a, b, 3, use=use)
    np.testing.assert_array_equal(i, np.argsort(-(a @ b.T), axis=1)[:, :3])
    np.testing.assert_allclose(s, np.sort(a @ b.T, axis=1)[:, ::-1][:, :3], rtol=1e-4, atol=1e-4)
    s, i = top_k(np.ones((2, 4)), np.ones((1, 4)), 5, use=use)
    assert s.shape == i.shape == (2, 1)
    s, i = top_k(np.ones((0, 4)), np.ones((3, 4)), 2, use=use)
    assert s.shape == (0, 2)


@pytest.mark.parametrize("use", CPU)
def test_ties_are_broken_by_lower_index(use):
    """Five identical rows and a sixth apart: neighbours among the copies come in index order, and a tie at
    the k-th place keeps the lowest indices; the same on every engine and every run."""
    base = _unit(2, d=8, seed=3)
    v = np.stack([base[0]] * 5 + [base[1]])
    s, i = knn(v, 2, use=use)
    assert i.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1], [0, 1], [0, 1]]
    assert np.allclose(s[:5], 1.0)
    again = knn(v, 2, use=use)[1]
    np.testing.assert_array_equal(i, again)
    np.testing.assert_array_equal(i, knn(v, 2, use="numpy")[1])


@pytest.mark.parametrize("use", CPU)
def test_empty_and_one_study(use):
    s, i = knn(np.zeros((0, 8)), 5, use=use)
    assert s.shape == i.shape == (0, 0)
    s, i = knn(_unit(1, 8), 5, use=use)
    assert s.shape == i.shape == (1, 0)
    assert len(near_duplicate_pairs(np.zeros((0, 8)), 0.9, use=use)) == 0
    assert len(near_duplicate_pairs(_unit(1, 8), 0.9, use=use)) == 0
    s, i = knn(_unit(3, 8), 10, use=use)                              # k capped at N - 1
    assert i.shape == (3, 2) and not (i == np.arange(3)[:, None]).any()


@pytest.mark.parametrize("use", CPU)
def test_near_duplicates_found_once_without_self_pairs(use):
    rng = np.random.default_rng(1)
    v = _unit(200, d=32, seed=1)
    v[150] = normalise(v[10:11] + 0.01 * rng.normal(size=(1, 32)))[0]   # a repeat study, slightly different
    v[170] = v[20]                                                     # the same study imported twice
    p = near_duplicate_pairs(v, 0.99, k=5, use=use)
    assert list(zip(p.i.tolist(), p.j.tolist())) == [(20, 170), (10, 150)]
    assert p.cosine[0] == pytest.approx(1.0, abs=1e-5) and 0.99 <= p.cosine[1] < 1.0
    assert (p.i < p.j).all() and p.saturated == 0
    exact = near_duplicate_pairs(v, 0.99999, k=5, use=use)
    assert list(zip(exact.i.tolist(), exact.j.tolist())) == [(20, 170)]


def test_near_duplicates_agree_with_brute_force():
    rng = np.random.default_rng(2)
    v = _unit(400, d=3, seed=2)                                       # low dimension: many close pairs
    s = v @ v.T
    want = {(a, b) for a in range(400) for b in range(a + 1, 400) if s[a, b] >= 0.97}
    p = near_duplicate_pairs(v, 0.97, k=399)
    assert set(zip(p.i.tolist(), p.j.tolist())) == want and len(p) == len(want) and want
    assert (np.diff(p.cosine) <= 1e-7).all()                          # best first
    small = near_duplicate_pairs(v, 0.97, k=2)
    assert small.saturated > 0 and set(zip(small.i.tolist(), small.j.tolist())) <= want


def test_bad_threshold_and_k():
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_pairs(_unit(5), 1.5)
    with pytest.raises(ValueError, match="k=0"):
        near_duplicate_pairs(_unit(5), 0.9, k=0)


def test_neighbour_table():
    v = _unit(6, 8)
    table = neighbour_table([f"s{i}" for i in range(6)], v, k=2)
    bi = _brute(v, 2)[1]
    assert [n for n, _ in table["s0"]] == [f"s{j}" for j in bi[0]]
    assert neighbour_table([], np.zeros((0, 8)), k=2) == {}


def test_client_near_duplicates(tmp_path):
    from cmr_search.search import Store, connect
    from tests.helpers.search_helpers import make_rows
    rows = make_rows(n=12)
    rows[7]["vectors"] = dict(rows[2]["vectors"])                     # study imported twice (other key)
    rows[7]["patient_key"] = rows[2]["patient_key"]
    with Store.open(tmp_path / "data", dim=32) as s:
        s.upsert_studies(rows)
    with connect(tmp_path / "data") as client:
        frame = client.near_duplicates(threshold=0.99, k=3)
        assert frame.columns == ["study_key_a", "study_key_b", "cosine", "same_patient"]
        assert frame.rows() == [("s0002", "s0007", pytest.approx(1.0, abs=1e-5), True)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(NeighboursTruncatedWarning):
                client.near_duplicates(threshold=-1.0, k=2)
        assert client.near_duplicates(threshold=0.99, k=3, filters={"sex": "F"}).height == 0

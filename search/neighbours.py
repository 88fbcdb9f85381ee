"""Exact k-nearest neighbours of every study (all pairs, inner product of L2-normalised vectors), with
faiss on the GPU where there is one; near-duplicate pairs above a cosine threshold (Client.near_duplicates,
`cmr duplicates`) and the map page's kNN graph use it.

    knn(vectors (N, D), k) -> scores (N, k), idx (N, k)      each row's k nearest OTHER rows, best first
    near_duplicate_pairs(vectors, threshold, k) -> Pairs     i < j, cosine >= threshold, best first
    top_k(queries (Q, D), base (N, D), k) -> scores, idx     the same search for any queries

Engine (`engine()`): faiss on the GPU (`pip install -e .[gpu]`, `faiss.get_num_gpus() > 0`), else torch on
CUDA, else the numpy floor (blocked matrix product + argpartition), which beat faiss-cpu on the CPU
(bench/knn.py, docs/sizing.md); `use="faiss-cpu"` still runs faiss's code path without a GPU. Every engine
is exact; ties are broken the same way everywhere: higher score first, then the lower row index (also at
the k-th place: of tied rows the lowest indices are kept).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

ENGINES = ("faiss-gpu", "torch-cuda", "numpy", "faiss-cpu", "torch-cpu")
GPU_MAX_K = 2_048                 # faiss-gpu's largest k; a larger k runs on the CPU
BLOCK_CELLS = 1 << 24             # numpy floor: query rows per block x base rows (64 MB of float32 scores)


@functools.lru_cache(maxsize=1)
def engine() -> str:
    """The engine `use=None` picks: 'faiss-gpu' (faiss with a GPU), else 'torch-cuda' (a CUDA torch, no
    faiss-gpu), else 'numpy'. On the CPU the numpy floor beat faiss-cpu (bench/knn.py: faiss-cpu ran at
    0.73-0.86x the floor's speed from 10,000 to 100,000 studies), so faiss-cpu is only picked by name."""
    try:
        import faiss
        if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            return "faiss-gpu"
    except ImportError:
        pass
    try:
        import torch
        if torch.cuda.is_available():
            return "torch-cuda"
    except ImportError:
        pass
    return "numpy"


def normalise(vectors) -> np.ndarray:
    """(N, D) -> contiguous float32 rows of unit length (a zero row stays zero)."""
    v = np.asarray(vectors, np.float32).reshape(len(vectors), -1) if len(vectors) else np.zeros((0, 0), np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.where(norms > 0, norms, 1.0), np.float32)


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, np.float32))


def _tie_order(scores: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted by score descending, then index ascending."""
    if scores.size == 0:
        return scores, idx
    order = np.lexsort((idx, -scores), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(idx, order, 1)


def top_k(queries, base, k: int, use: str | None = None, *, skip_self: bool = False,
          offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the k base rows with the largest inner product: (Q, k) float32 scores and int64
    indices, best first (k is capped at the number of base rows available). skip_self: query row r is
    base row offset + r (all pairs), never its own neighbour."""
    q, b = _f32(queries), _f32(base)
    n_avail = len(b) - (1 if skip_self and len(b) else 0)
    k = max(0, min(int(k), n_avail))
    if k == 0 or len(q) == 0:
        return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)
    use = use or engine()
    if use not in ENGINES:
        raise ValueError(f"use={use!r}: choose one of {', '.join(ENGINES)}")
    if use == "numpy":
        return _numpy_top_k(q, b, k, skip_self, offset)
    return _engine_top_k(q, b, k, skip_self, offset, use)


def knn(vectors, k: int, use: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs exact kNN: each row's k nearest other rows by cosine (rows are normalised here)."""
    v = normalise(vectors)
    return top_k(v, v, k, use, skip_self=True)


# ---- engines ---------------------------------------------------------------------------------------
def _numpy_top_k(q, b, k, skip_self, offset):
    """The floor: blocks of query rows times all base rows (one BLAS product), argpartition for the k best."""
    n = len(b)
    out_s, out_i = np.empty((len(q), k), np.float32), np.empty((len(q), k), np.int64)
    block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, len(q), block):
        s = q[start:start + block] @ b.T                              # (B, N)
        rows = np.arange(len(s))
        if skip_self:
            s[rows, rows + offset + start] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(s), 1))[:, :k]
        ps = np.take_along_axis(s, part, 1)
        kth = ps.min(1)
        for r in np.nonzero((s >= kth[:, None]).sum(1) > k)[0]:       # a tie at the k-th place: lowest indices
            cand = np.nonzero(s[r] >= kth[r])[0]
            part[r] = cand[np.lexsort((cand, -s[r, cand]))][:k]
        ps = np.take_along_axis(s, part, 1)
        out_s[start:start + len(s)], out_i[start:start + len(s)] = _tie_order(ps, part.astype(np.int64))
    return out_s, out_i


def _faiss_index(b: np.ndarray, gpu: bool):
    import faiss
    index = faiss.IndexFlatIP(b.shape[1])
    if gpu:
        index = faiss.index_cpu_to_gpu(_gpu_resources(), 0, index)
    index.add(b)
    return index


@functools.lru_cache(maxsize=1)
def _gpu_resources():
    import faiss
    return faiss.StandardGpuResources()


def _torch_search(q, b, kk, device: str):
    """kk best per query row by torch on `device` (cuda): blocks of query rows x all rows, topk."""
    import torch
    bt = torch.from_numpy(b).to(device).T
    out_s, out_i = np.empty((len(q), kk), np.float32), np.empty((len(q), kk), np.int64)
    cells = BLOCK_CELLS * (16 if device == "cuda" else 1)        # a GPU takes 1 GB of scores per block
    block = max(1, cells // max(len(b), 1))
    for start in range(0, len(q), block):
        s = torch.from_numpy(q[start:start + block]).to(device) @ bt
        top = s.topk(kk, dim=1)
        out_s[start:start + len(s)] = top.values.cpu().numpy()
        out_i[start:start + len(s)] = top.indices.cpu().numpy()
    return out_s, out_i


def _engine_top_k(q, b, k, skip_self, offset, use: str):
    """faiss (or torch) returns the kk best in no fixed order among equal scores, and which of several rows
    tied at the k-th place it keeps is its own choice: one extra neighbour is fetched, and a row whose extra
    one ties its k-th (exact copies) is solved again exactly by the numpy floor (rare: only copies tie)."""
    kk = min(k + (1 if skip_self else 0) + 1, len(b))
    if use == "torch-cuda":
        scores, idx = _torch_search(q, b, kk, "cuda")
    elif use == "torch-cpu":                        # the torch path without a GPU (tests)
        scores, idx = _torch_search(q, b, kk, "cpu")
    else:
        scores, idx = _faiss_index(b, gpu=use == "faiss-gpu" and kk <= GPU_MAX_K).search(q, kk)
    scores, idx = _tie_order(scores, idx.astype(np.int64))
    unsure = np.zeros(len(q), bool)
    if skip_self:
        drop = idx == (np.arange(len(q))[:, None] + offset)
        unsure = ~drop.any(1)                       # self pushed out by copies of itself
        drop[unsure, -1] = True
        keep = ~drop
        scores, idx = scores[keep].reshape(len(q), kk - 1), idx[keep].reshape(len(q), kk - 1)
    if scores.shape[1] > k:
        unsure |= scores[:, k] >= scores[:, k - 1]
    scores, idx = np.ascontiguousarray(scores[:, :k]), np.ascontiguousarray(idx[:, :k])
    for r in np.nonzero(unsure)[0]:
        scores[r], idx[r] = (a[0] for a in _numpy_top_k(q[r:r + 1], b, k, skip_self, offset + r))
    return scores, idx


# ---- near duplicates -------------------------------------------------------------------------------
@dataclass
class Pairs:
    """Near-duplicate pairs as row indices: i < j, cosine >= threshold, best first (then i, then j).
    saturated: rows whose k-th neighbour is still above the threshold (they may have more pairs: raise k)."""
    i: np.ndarray
    j: np.ndarray
    cosine: np.ndarray
    saturated: int = 0

    def __len__(self) -> int:
        return len(self.i)


def near_duplicate_pairs(vectors, threshold: float, k: int = 10, use: str | None = None) -> Pairs:
    """Pairs of rows with cosine >= threshold among each row's k nearest neighbours (exact kNN), each pair
    once, never a row with itself."""
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold={threshold}: a cosine, between -1 and 1 (e.g. 0.98)")
    if int(k) < 1:
        raise ValueError(f"k={k}: at least 1 neighbour per study")
    return pairs_from_knn(*knn(vectors, k, use), threshold)


def pairs_from_knn(scores: np.ndarray, idx: np.ndarray, threshold: float) -> Pairs:
    """The near-duplicate pairs in an all-pairs kNN result (`knn`): each pair once, i < j, best first."""
    if scores.size == 0:
        empty = np.zeros(0, np.int64)
        return Pairs(empty, empty, np.zeros(0, np.float32))
    hit = scores >= threshold
    rows = np.broadcast_to(np.arange(len(scores))[:, None], scores.shape)
    a, b, s = rows[hit], idx[hit], scores[hit]
    i, j = np.minimum(a, b), np.maximum(a, b)
    # a pair found from both sides appears twice: keep one (the higher score; they agree up to rounding)
    order = np.lexsort((-s, j, i))
    i, j, s = i[order], j[order], s[order]
    first = np.ones(len(i), bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    i, j, s = i[first], j[first], s[first]
    order = np.lexsort((j, i, -s))
    saturated = int((scores[:, -1] >= threshold).sum()) if scores.shape[1] else 0
    return Pairs(i[order], j[order], s[order], saturated)


def study_vectors(store, view: str = "study", filters=None) -> tuple[list[str], np.ndarray, list]:
    """Every study's `view` vector from the index (studies without one are skipped), in study_key order:
    keys, (N, D) float32 normalised vectors, patient keys (None where unknown)."""
    keys, vecs, patients = [], [], []
    for hit in store.scroll(filters, vectors=[view], batch=1_024):
        v = hit.vectors.get(view)
        if v is None:
            continue
        keys.append(hit.key)
        vecs.append(v)
        patients.append(hit.payload.get("patient_key"))
    order = sorted(range(len(keys)), key=keys.__getitem__)          # rows in study_key order: ties by key
    keys, patients = [keys[i] for i in order], [patients[i] for i in order]
    vecs = normalise(np.asarray([vecs[i] for i in order], np.float32)) if vecs else np.zeros((0, 0), np.float32)
    return keys, vecs, patients


def near_duplicates(store, threshold: float = 0.98, k: int = 10, view: str = "study", filters=None):
    """The index's near-duplicate study pairs as a DataFrame: study_key_a < study_key_b, cosine, same_patient
    (True/False, None where a patient key is missing), best first (then by keys). A warning says when some studies have k
    neighbours above the threshold (there may be more pairs: raise k)."""
    import warnings

    import polars as pl
    keys, vecs, patients = study_vectors(store, view, filters)
    pairs = near_duplicate_pairs(vecs, threshold, k)
    if pairs.saturated:
        warnings.warn(f"{pairs.saturated} studies have {k} neighbours at cosine >= {threshold}: there may be "
                      f"more pairs; raise k.", NeighboursTruncatedWarning, stacklevel=3)
    same = [None if patients[a] is None or patients[b] is None else patients[a] == patients[b]
            for a, b in zip(pairs.i.tolist(), pairs.j.tolist())]
    return pl.DataFrame({"study_key_a": [keys[a] for a in pairs.i.tolist()],
                         "study_key_b": [keys[b] for b in pairs.j.tolist()],
                         "cosine": pairs.cosine.astype(np.float64), "same_patient": same},
                        schema={"study_key_a": pl.Utf8, "study_key_b": pl.Utf8, "cosine": pl.Float64,
                                "same_patient": pl.Boolean})


def neighbour_table(keys: list[str], vectors, k: int = 5) -> dict[str, list[tuple[str, float]]]:
    """{study_key: [(neighbour study_key, cosine), ...]} of each study's k nearest others (the map page)."""
    scores, idx = knn(vectors, k) if len(keys) else (np.zeros((0, 0)), np.zeros((0, 0), np.int64))
    return {key: [(keys[j], float(s)) for j, s in zip(row_i.tolist(), row_s.tolist())]
            for key, row_i, row_s in zip(keys, idx, scores)}


class NeighboursTruncatedWarning(UserWarning):
    """Some studies have k neighbours above the duplicate threshold: the pair list may be incomplete."""

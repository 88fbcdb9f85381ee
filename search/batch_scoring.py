"""Batch scoring of the whole archive: inner products of many L2-normalised vectors (architecture.md §6).

Engine, best first: faiss on the GPU (`pip install -e .[gpu]`), torch on CUDA, faiss on the CPU, numpy.
    similarity(studies (N, D), prompts (L, D)) -> (N, L)     zero-shot labeling
    top_k(queries (Q, D), base (N, D), k) -> scores, idx   near-duplicate / batch retrieval
"""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def engine() -> str:
    """'faiss-gpu' | 'torch-cuda' | 'faiss-cpu' | 'numpy'."""
    try:
        import faiss
        if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            return "faiss-gpu"
    except ImportError:
        faiss = None
    try:
        import torch
        if torch.cuda.is_available():
            return "torch-cuda"
    except ImportError:
        pass
    return "faiss-cpu" if faiss is not None else "numpy"


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, np.float32))


def top_k(queries, base, k: int, use: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the k base rows with the largest inner product: (Q, k) scores and indices,
    best first (k is capped at len(base))."""
    q, b = _f32(queries), _f32(base)
    k = min(int(k), len(b))
    if k == 0 or len(q) == 0:
        return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)
    use = use or engine()
    if use.startswith("faiss"):
        import faiss
        index = faiss.IndexFlatIP(b.shape[1])
        if use == "faiss-gpu":
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        index.add(b)
        scores, idx = index.search(q, k)
        return scores, idx.astype(np.int64)
    if use == "torch-cuda":
        import torch
        s = torch.from_numpy(q).cuda() @ torch.from_numpy(b).cuda().T
        scores, idx = s.topk(k, dim=1)
        return scores.cpu().numpy(), idx.cpu().numpy().astype(np.int64)
    s = q @ b.T
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), idx


def similarity(rows, cols, use: str | None = None) -> np.ndarray:
    """Full (N, L) inner-product matrix of rows (N, D) against a small set of columns (L, D)."""
    r, c = _f32(rows), _f32(cols)
    scores, idx = top_k(r, c, len(c), use)
    out = np.empty((len(r), len(c)), np.float32)
    np.put_along_axis(out, idx, scores, 1)
    return out

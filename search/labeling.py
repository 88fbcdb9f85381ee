"""Zero-shot labeling of every study in the index (Client.label): prompt ensembles encoded once, all study
vectors scored in one batch (one (N, D) x (D, L) matrix product: L is a handful of labels, so numpy does it
in milliseconds for 100,000 studies; no index needed), results written back to the payload."""
from __future__ import annotations

import numpy as np
import polars as pl

from .errors import QueryError

SCROLL_BATCH = 1_024


def prompt_matrix(model, prompt_sets: dict[str, list[str]]) -> tuple[list[str], np.ndarray]:
    """{label: [prompts]} -> label names and (L, D) L2-normalised mean prompt embeddings."""
    from cmr_search.model import embed_texts
    if not isinstance(prompt_sets, dict) or not prompt_sets:
        raise QueryError("label() needs {label name: [prompt, ...]}, e.g. {'amyloid': ['cardiac amyloidosis']}.")
    names, texts, owner = list(prompt_sets), [], []
    for i, name in enumerate(names):
        prompts = [prompt_sets[name]] if isinstance(prompt_sets[name], str) else list(prompt_sets[name])
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise QueryError(f"label {name!r} has no prompts (or an empty one); give a list of phrases.")
        texts += prompts
        owner += [i] * len(prompts)
    emb = embed_texts(model, texts)                                     # (P, D), all prompts in one go
    owner = np.asarray(owner)
    mat = np.stack([emb[owner == i].mean(0) for i in range(len(names))])   # (L, D)
    return names, mat / np.linalg.norm(mat, axis=1, keepdims=True).clip(1e-12)


def similarity(rows, cols) -> np.ndarray:
    """(N, L) inner products of rows (N, D) with a small set of columns (L, D), float32."""
    return np.asarray(rows, np.float32) @ np.asarray(cols, np.float32).T


def _softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = x / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def score_studies(client, prompt_sets, filters, temperature: float, write: bool,
                  progress=None) -> pl.DataFrame:
    """progress: optional callable(fraction in [0, 1], message) called as the work goes on."""
    say = progress or (lambda fraction, message: None)
    say(0.0, "encoding the prompts")
    names, prompts = prompt_matrix(client.model, prompt_sets)
    keys, vecs = [], []
    total = max(1, client.store.count())
    for hit in client.store.scroll(filters, vectors=["study"], batch=SCROLL_BATCH):
        keys.append(hit.key)
        vecs.append(hit.vectors["study"])
        if len(keys) % SCROLL_BATCH == 0:
            say(min(0.3, 0.3 * len(keys) / total), f"read {len(keys)} study vectors")
    if not keys:
        return pl.DataFrame({"study_key": [], "label": [], "score": []},
                            schema={"study_key": pl.Utf8, "label": pl.Utf8, "score": pl.Float64})
    probs = _softmax(similarity(vecs, prompts), temperature)                           # (N, L)
    top = probs.argmax(1)
    if write:
        step = max(1, len(keys) // 50)
        for i, (key, p, t) in enumerate(zip(keys, probs, top)):
            client.store.set_payload(key, {"labels": [names[t]],
                                           "label_scores": {n: round(float(s), 4) for n, s in zip(names, p)}})
            if i % step == 0:
                say(0.3 + 0.7 * i / len(keys), f"labelled {i} of {len(keys)} studies")
        client.store.flush()
    say(1.0, f"labelled {len(keys)} studies")
    frame = pl.DataFrame({"study_key": keys, "label": [names[t] for t in top],
                          "score": probs[np.arange(len(keys)), top].astype(np.float64)})
    return frame.with_columns([pl.Series(f"score_{n}", probs[:, i].astype(np.float64)) for i, n in enumerate(names)])

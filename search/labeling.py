"""Zero-shot labeling of every study in the index (Client.label), with calibrated confidence.

Prompt ensembles are encoded once; all study vectors are scored in one batch (one (N, D) x (D, L) matrix
product: L is a handful of labels, so numpy does it in milliseconds for 100,000 studies; no index needed).

Scores are honest: the softmax over labels runs at a temperature FITTED on a labelled validation archive
(`fit_temperature`: the one that minimises the negative log-likelihood of the true labels), not at CLIP's
training temperature 0.01 that makes every study "1.0 vs 5e-30". A per-label threshold (`fit_thresholds`)
leaves a study unlabelled (label None) when its top probability is too low to be right at least
`precision` of the time on that archive. Both live in the checkpoint card as "label_calibration":

    cal = Calibration.from_card(json.load(open("model/checkpoints/cmr-tiny-measured/card.json")))
    cal.temperature, cal.thresholds["HCM"]          # e.g. 0.05, 0.46

The `margin` column is the cosine gap between the best and the second-best label (no calibration in it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .errors import QueryError

SCROLL_BATCH = 1_024
DEFAULT_TEMPERATURE = 0.01     # uncalibrated: CLIP's logit scale 100 (over-confident)


@dataclass(frozen=True)
class Calibration:
    """The softmax temperature and per-label thresholds of zero-shot labels (a card's label_calibration).
    A threshold of None: the label is never given (no cutoff was right often enough on the archive)."""
    temperature: float = DEFAULT_TEMPERATURE
    thresholds: dict = field(default_factory=dict)
    model_id: str | None = None

    @classmethod
    def from_card(cls, card: dict, model_id: str | None = None) -> "Calibration":
        """The card's calibration when it was fitted for `model_id` (or no model id is asked); else none."""
        cal = (card or {}).get("label_calibration") or {}
        if not cal or (model_id is not None and cal.get("model_id") != model_id):
            return cls()
        return cls(float(cal["temperature"]), dict(cal.get("thresholds") or {}), cal.get("model_id"))

    @classmethod
    def for_model(cls, card: dict, model_id: str) -> "Calibration":
        """The card's calibration for `model_id`; else one fitted for the same weights in a shipped
        checkpoint's card (an index built before the card had one); else the uncalibrated default."""
        cal = cls.from_card(card, model_id)
        if cal.model_id is not None:
            return cal
        import json
        from pathlib import Path

        import cmr_search.model as model_pkg
        for f in sorted((Path(model_pkg.__file__).parent / "checkpoints").glob("*/card.json")):
            try:
                found = cls.from_card(json.loads(f.read_text()), model_id)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if found.model_id == model_id:
                return found
        return cal

    def keep(self, name: str, p: float) -> bool:
        if name not in self.thresholds:
            return True
        t = self.thresholds[name]
        return t is not None and p >= t


def prompt_matrix(encoder, prompt_sets: dict[str, list[str]]) -> tuple[list[str], np.ndarray]:
    """{label: [prompts]} -> label names and (L, D) L2-normalised mean prompt embeddings. `encoder`: the
    client's text encoder (`.encode(texts)` -> unit rows) or a CMRClip model."""
    if not isinstance(prompt_sets, dict) or not prompt_sets:
        raise QueryError("label() needs {label name: [prompt, ...]}, e.g. {'amyloid': ['cardiac amyloidosis']}.")
    names, texts, owner = list(prompt_sets), [], []
    for i, name in enumerate(names):
        prompts = [prompt_sets[name]] if isinstance(prompt_sets[name], str) else list(prompt_sets[name])
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise QueryError(f"label {name!r} has no prompts (or an empty one); give a list of phrases.")
        texts += prompts
        owner += [i] * len(prompts)
    if hasattr(encoder, "encode"):
        emb = encoder.encode(texts)                                         # (P, D), all prompts in one go
    else:
        from cmr_search.model import embed_texts
        emb = embed_texts(encoder, texts)
    owner = np.asarray(owner)
    mat = np.stack([emb[owner == i].mean(0) for i in range(len(names))])   # (L, D)
    return names, mat / np.linalg.norm(mat, axis=1, keepdims=True).clip(1e-12)


def similarity(rows, cols) -> np.ndarray:
    """(N, L) inner products of rows (N, D) with a small set of columns (L, D), float32."""
    return np.asarray(rows, np.float32) @ np.asarray(cols, np.float32).T


def softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(x, np.float64) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def nll(sims: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true label indices `y` under softmax(sims / temperature)."""
    z = np.asarray(sims, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def fit_temperature(sims: np.ndarray, y: np.ndarray, lo: float = 1e-3, hi: float = 10.0,
                    iters: int = 80) -> float:
    """The temperature in [lo, hi] minimising nll(sims, y, T): golden-section search on log T (the NLL is
    convex in 1/T, so unimodal there). sims (N, L) cosines, y (N,) true label indices."""
    y = np.asarray(y)
    if len(y) == 0:
        raise ValueError("fit_temperature needs labelled rows")
    a, b, g = math.log(lo), math.log(hi), (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(sims, y, math.exp(c)), nll(sims, y, math.exp(d))
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(sims, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(sims, y, math.exp(d))
    return math.exp((a + b) / 2)


def fit_thresholds(probs: np.ndarray, y: np.ndarray, names: list[str], precision: float = 0.5,
                   min_support: int = 5) -> dict:
    """Per label: the lowest top probability from which the studies predicted that label are right at
    least `precision` of the time (over >= min_support of them); None when no cutoff gets there."""
    top, p = probs.argmax(1), probs.max(1)
    out = {}
    for i, name in enumerate(names):
        sel = top == i
        order = np.argsort(-p[sel])
        right = (np.asarray(y)[sel] == i)[order]
        prec = np.cumsum(right) / np.arange(1, len(right) + 1)          # precision of the top-n cut
        ok = [n for n in range(min_support, len(right) + 1) if prec[n - 1] >= precision]
        out[name] = round(float(p[sel][order][max(ok) - 1]), 4) if ok else None
    return out


def score_studies(client, prompt_sets, filters, calibration: Calibration, write: bool,
                  progress=None) -> pl.DataFrame:
    """progress: optional callable(fraction in [0, 1], message) called as the work goes on."""
    say = progress or (lambda fraction, message: None)
    say(0.0, "encoding the prompts")
    names, prompts = prompt_matrix(client.text_encoder, prompt_sets)
    keys, vecs = [], []
    total = max(1, client.store.count())
    for hit in client.store.scroll(filters, vectors=["study"], batch=SCROLL_BATCH):
        keys.append(hit.key)
        vecs.append(hit.vectors["study"])
        if len(keys) % SCROLL_BATCH == 0:
            say(min(0.3, 0.3 * len(keys) / total), f"read {len(keys)} study vectors")
    if not keys:
        return pl.DataFrame({"study_key": [], "label": [], "score": [], "margin": []},
                            schema={"study_key": pl.Utf8, "label": pl.Utf8, "score": pl.Float64,
                                    "margin": pl.Float64})
    sims = similarity(vecs, prompts)                                                     # (N, L)
    probs = softmax(sims, calibration.temperature)
    top = probs.argmax(1)
    best = probs[np.arange(len(keys)), top]
    labels = [names[t] if calibration.keep(names[t], p) else None for t, p in zip(top, best)]
    ranked = np.sort(sims, axis=1)
    margin = ranked[:, -1] - (ranked[:, -2] if sims.shape[1] > 1 else 0.0)
    if write:
        step = max(1, len(keys) // 50)
        for i, (key, p, lab) in enumerate(zip(keys, probs, labels)):
            client.store.set_payload(key, {"labels": [lab] if lab is not None else [],
                                           "label_scores": {n: round(float(s), 4) for n, s in zip(names, p)}})
            if i % step == 0:
                say(0.3 + 0.7 * i / len(keys), f"labelled {i} of {len(keys)} studies")
        client.store.flush()
    say(1.0, f"labelled {len(keys)} studies")
    frame = pl.DataFrame({"study_key": keys, "label": labels, "score": best.astype(np.float64),
                          "margin": margin.astype(np.float64)}, schema_overrides={"label": pl.Utf8})
    return frame.with_columns([pl.Series(f"score_{n}", probs[:, i].astype(np.float64)) for i, n in enumerate(names)])

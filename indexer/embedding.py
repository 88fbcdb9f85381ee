"""Embedding cached studies: a study's cache arrays -> the clips of its image vectors (`study` all views,
`cine` LGE views masked, `lge` cine views masked) -> unit vectors from the video tower, and its
de-identified impression -> the `report` vector (plus report_text, report_clauses and report_terms with
the collection's sentence encoder). Batches are decoded in a thread while the model runs."""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from cmr_search.indexer.cache import load_arrays
from cmr_search.model.embed import embed_clips, embed_texts
from cmr_search.model.measures import measure_matrix
from cmr_search.model.preprocess import CINE_VIEWS, LGE_VIEWS, build_clip
from cmr_search.model.report_text import ReportTextEncoder
from cmr_search.search.errors import EmbedSizeMismatchError
from cmr_search.search.store import Store
from cmr_search.search.terms import report_terms


def study_clips(views: dict[str, np.ndarray], spec) -> dict[str, tuple | None]:
    """One study's cache arrays -> the clip of each image vector (None where the views are absent)."""
    has = {v for v, a in views.items() if a is not None and len(a)}
    if not has:
        return {"study": None, "cine": None, "lge": None}
    return {"study": build_clip(views, spec),
            "cine": build_clip(views, spec, drop=LGE_VIEWS) if has & set(CINE_VIEWS) else None,
            "lge": build_clip(views, spec, drop=CINE_VIEWS) if has & set(LGE_VIEWS) else None}


def embed_batch(model, clips: list[dict], texts: list[str | None], device,
                report_encoder=None, measures: list[dict] | None = None) -> list[dict[str, np.ndarray | None]]:
    """Clips of B studies (study_clips) + impressions -> per study {vector name: unit vector or None}.
    All image clips go through the video tower in one pass (the `study` and `cine` clips with the study's
    measurements, `measures` = its cache rows, for a model with a measure head: model/measures.py; the
    `lge` clip without them); impressions through the text tower, and with
    a `report_encoder` (model/report_text.py) also into report_text and report_clauses, and their words into
    report_terms (search/terms.py)."""
    todo = [(i, name) for i, c in enumerate(clips) for name in ("study", "cine", "lge") if c[name] is not None]
    out = [{"study": None, "cine": None, "lge": None, "report": None} for _ in clips]
    if todo:
        frames = np.stack([clips[i][n][0] for i, n in todo])           # (K, F, S, S)
        ids = np.stack([clips[i][n][1] for i, n in todo])              # (K, F)
        mask = np.stack([clips[i][n][2] for i, n in todo])             # (K, F)
        rows = [measures[i] if measures is not None and n != "lge" else None for i, n in todo]
        emb = embed_clips(model, [(frames, ids, mask, None, measure_matrix(rows))], device=device)
        for (i, n), e in zip(todo, emb):
            out[i][n] = e
    has_text = [i for i, t in enumerate(texts) if t and t.strip()]
    if has_text:
        for i, e in zip(has_text, embed_texts(model, [texts[i] for i in has_text])):
            out[i]["report"] = e
    if has_text and report_encoder is not None:
        for i, (whole, clauses) in zip(has_text, report_encoder.encode_reports([texts[i] for i in has_text])):
            out[i]["report_text"], out[i]["report_clauses"] = whole, clauses
            out[i]["report_terms"] = report_terms(texts[i])
    return out


def clip_batches(cache: Path, rows: list[dict], spec, size: int) -> Iterator[tuple[list[dict], list[dict]]]:
    """(rows, clips) per batch of `size` cached studies; the next batch is decoded in a thread while the
    model runs on this one."""
    def load(chunk):
        return chunk, [study_clips(load_arrays(cache, r["array_path"]), spec) for r in chunk]

    chunks = [rows[s:s + size] for s in range(0, len(rows), size)]
    if not chunks:
        return
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(load, chunks[0])
        for nxt in chunks[1:] + [None]:
            done = pending.result()
            pending = pool.submit(load, nxt) if nxt is not None else None
            yield done


def report_encoder_for(store: Store, device: str):
    """The sentence encoder of the collection's report-text vectors; None for a collection without them."""
    if not store.has_report_text:
        warnings.warn(f"{store.where} was made before report-text search: reports get only the model's "
                      "`report` vector. `cmr index --rebuild` adds report_text, report_clauses and report_terms.",
                      stacklevel=3)
        return None
    enc = ReportTextEncoder(device=device)
    if enc.dim != store.text_dim:
        raise EmbedSizeMismatchError(store.text_dim, enc.dim, store.where, f"report-text encoder {enc.name}")
    return enc

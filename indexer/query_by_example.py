"""Query by example: one raw DICOM study folder -> its image vectors (architecture.md §2).

    from cmr_search.indexer import embed_study
    vectors, qa, n_studies = embed_study("upload/", model)   # {"study", "cine"[, "lge"]} unit vectors
    client.similar(vectors["study"], k=20)                    # search takes the vector, never the files

The folder is scanned, typed and assembled exactly as `cmr prepare` does (and, for a model with a measure
head, measured by the segmenter as `cmr prepare` measures), then embedded like `cmr index` embeds a
cached study, so an uploaded study lands where the same study would after indexing. A folder with several
studies gives the largest (most images); `n_studies` says how many were found.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cmr_search.indexer.assemble import assemble_with_cine
from cmr_search.indexer.embedding import embed_batch, study_clips
from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.measurements import body_size, load_segmenter, measure_study
from cmr_search.indexer.scan import scan_archive
from cmr_search.indexer.series_typing import type_study


class ExampleError(IndexerError):
    """The folder holds no usable study (no DICOM images, or no cine / LGE series)."""


def _study(folder: str | Path):
    studies, _ = scan_archive(str(folder))
    if not studies:
        raise ExampleError(f"no DICOM images found in {folder}.")
    study = max(studies, key=lambda s: sum(len(se.instances) for se in s.series))
    views, qa, cine = assemble_with_cine(study, type_study(study))
    if not views:
        raise ExampleError(f"no cine or LGE series recognised in the study in {folder}.")
    return study, views, qa, cine, len(studies)


def study_views(folder: str | Path) -> tuple[dict[str, np.ndarray], object, int]:
    """Scan, type and assemble the single study in `folder` -> (views, qa, number of studies found)."""
    _, views, qa, _, n = _study(folder)
    return views, qa, n


def embed_views(model, views: dict[str, np.ndarray], measures: dict | None = None) -> dict[str, np.ndarray]:
    """One study's cache arrays (and measurement fields) -> its image vectors (absent views: no vector)."""
    vecs = embed_batch(model, [study_clips(views, model.clip_spec)], [None], model.device,
                       measures=[measures])[0]
    return {k: v for k, v in vecs.items() if v is not None}


def _measures(study, cine, segmenter=None) -> dict | None:
    """The study's measurement fields, as `cmr prepare` writes them (None: no segmenter or no cine)."""
    seg = load_segmenter(segmenter)
    if seg is None or cine is None:
        return None
    height, weight = body_size(study.height_m, study.weight_kg)
    try:
        return measure_study(seg, cine, height_cm=height, weight_kg=weight)[0]
    except Exception:          # as in prepare: an unmeasurable study is embedded as unmeasured
        return None


def embed_study(folder: str | Path, model, segmenter=None) -> tuple[dict[str, np.ndarray], object, int]:
    """A raw DICOM study folder -> (vectors {"study", "cine"[, "lge"]}, qa record, studies found); a model
    with a measure head also gets the study's measurements (`segmenter`: as prepare's argument)."""
    study, views, qa, cine, n = _study(folder)
    measures = _measures(study, cine, segmenter) if model.cfg.measure_head else None
    return embed_views(model, views, measures), qa, n

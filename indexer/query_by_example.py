"""Query by example: one raw DICOM study folder -> its image vectors (architecture.md §2).

    from cmr_search.indexer import embed_study
    vectors, qa, n_studies = embed_study("upload/", model)   # {"study", "cine"[, "lge"]} unit vectors
    client.similar(vectors["study"], k=20)                    # search takes the vector, never the files

The folder is scanned, typed and assembled exactly as `cmr prepare` does, then embedded like `cmr index`
embeds a cached study, so an uploaded study lands where the same study would after indexing. A folder
with several studies gives the largest (most images); `n_studies` says how many were found.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cmr_search.indexer.assemble import assemble_study
from cmr_search.indexer.embedding import embed_batch, study_clips
from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.scan import scan_archive
from cmr_search.indexer.series_typing import type_study


class ExampleError(IndexerError):
    """The folder holds no usable study (no DICOM images, or no cine / LGE series)."""


def study_views(folder: str | Path) -> tuple[dict[str, np.ndarray], object, int]:
    """Scan, type and assemble the single study in `folder` -> (views, qa, number of studies found)."""
    studies, _ = scan_archive(str(folder))
    if not studies:
        raise ExampleError(f"no DICOM images found in {folder}.")
    study = max(studies, key=lambda s: sum(len(se.instances) for se in s.series))
    views, qa = assemble_study(study, type_study(study))
    if not views:
        raise ExampleError(f"no cine or LGE series recognised in the study in {folder}.")
    return views, qa, len(studies)


def embed_views(model, views: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One study's cache arrays -> its image vectors (absent views give no vector)."""
    vecs = embed_batch(model, [study_clips(views, model.clip_spec)], [None], model.device)[0]
    return {k: v for k, v in vecs.items() if v is not None}


def embed_study(folder: str | Path, model) -> tuple[dict[str, np.ndarray], object, int]:
    """A raw DICOM study folder -> (vectors {"study", "cine"[, "lge"]}, qa record, studies found)."""
    views, qa, n = study_views(folder)
    return embed_views(model, views), qa, n

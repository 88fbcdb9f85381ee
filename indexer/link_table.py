"""DATA/link.parquet: study_key -> raw identifiers of the indexed studies, beside the index and never in it.
Each `cmr index` run merges the cache's links of the studies it indexed into the table of earlier runs."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import polars as pl

from cmr_search.indexer.cache import LINK_COLUMNS, remove_stale_temps, write_atomic
from cmr_search.model.cache_folder import CacheFolder
from cmr_search.search.data_folder import DataFolder


def write_link_table(folder: DataFolder, keys: set[str]) -> None:
    """Merge the cache's links of `keys` into DATA/link.parquet (written atomically); nothing when the
    cache has no link table."""
    src = CacheFolder(folder.cache).link_table
    if not src.exists():
        return
    remove_stale_temps(folder.root)
    new = pl.read_parquet(src).filter(pl.col("study_key").is_in(sorted(keys)))
    dst = folder.link_table
    merged = pl.concat([_read_old_link(dst), new], how="diagonal_relaxed")
    merged = merged.unique("study_key", keep="last", maintain_order=True).select(LINK_COLUMNS)
    buf = io.BytesIO()
    merged.write_parquet(buf)
    write_atomic(dst, buf.getvalue())


def _read_old_link(dst: Path) -> pl.DataFrame:
    """The link table of earlier runs; a damaged one is rebuilt from the cache's (with a warning)."""
    if not dst.exists():
        return pl.DataFrame()
    try:
        return pl.read_parquet(dst)
    except Exception as e:                          # polars raises its own error types for a bad file
        warnings.warn(f"{dst} is unreadable ({type(e).__name__}); writing it again from the study cache.",
                      stacklevel=3)
        return pl.DataFrame()

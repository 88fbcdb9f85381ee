"""The study cache's layout: where each file of a cache folder lives (DATA/cache, or `cmr prepare --out`).

The indexer writes a cache (indexer.cache), training and evaluation read it (model.training.data), the
data folder points at one (search.data_folder); all three ask this class for the file names, which sits in
`model` because it is the room every other one may import.

    CACHE/
      studies.parquet   one row per study (keys and coarse metadata, never raw identifiers)
      link.parquet      study_key -> raw identifiers (the indexer merges it into DATA/link.parquet)
      errors.parquet    the files that could not be read, with the reason
      arrays/           one .npz of view arrays per study
      masks/            one .npz of display masks per measured study (indexer/measurements.py)
      parts/            part files of an unfinished run (merged at the end; a killed run resumes from them)
"""
from __future__ import annotations

from pathlib import Path


class CacheFolder:
    """Where each file of a study cache folder lives."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def studies_table(self) -> Path:
        return self.root / "studies.parquet"

    @property
    def link_table(self) -> Path:
        return self.root / "link.parquet"

    @property
    def errors_table(self) -> Path:
        return self.root / "errors.parquet"

    @property
    def arrays(self) -> Path:
        return self.root / "arrays"

    @property
    def masks(self) -> Path:
        return self.root / "masks"

    @property
    def parts(self) -> Path:
        return self.root / "parts"

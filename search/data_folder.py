"""The data folder: the one place that knows where each part of a cmr-search data folder lives.

    DATA/
      index/          the embedded Qdrant index (search.backends.edge)
        .readers/       private copies of it that reading processes search (backends/edge_turns.py)
      cache/          the study cache written by `cmr prepare` (indexer.cache)
        studies.parquet   one row per study (keys and coarse metadata, never raw identifiers)
      model/          the checkpoint the index was built with (model.checkpoint)
      link.parquet    study_key -> raw identifiers of the indexed studies (never in the index)
      audit.jsonl     the audit trail: one JSON line per search, cohort run and export (search/audit.py)
      thumbs/         the workbench's cine GIFs and LGE stills (ui/app/media.py)
      cohorts/        cohorts saved from the workbench; exports/: its CSV / Parquet exports
      demo-archive/   the synthetic archive of `cmr demo`

Everything that reads or writes one of these paths asks a `DataFolder` for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cmr_search.model.cache_folder import CacheFolder


@dataclass(frozen=True)
class DataFolder:
    root: Path                      # the data folder itself (default $CMR_DATA, else ./cmr-data)

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def index(self) -> Path:
        """The embedded Qdrant index."""
        return self.root / "index"

    @property
    def index_readers(self) -> Path:
        """The reading processes' copies of the embedded index (one per process, removed on close)."""
        return self.index / ".readers"

    @property
    def cache(self) -> Path:
        """The study cache (`cmr prepare`)."""
        return self.root / "cache"

    @property
    def studies_table(self) -> Path:
        """The cache's table of studies (one row per study)."""
        return CacheFolder(self.cache).studies_table

    @property
    def model(self) -> Path:
        """The checkpoint folder the index was built with."""
        return self.root / "model"

    @property
    def link_table(self) -> Path:
        """study_key -> raw identifiers of the indexed studies."""
        return self.root / "link.parquet"

    @property
    def audit_log(self) -> Path:
        """The audit trail (search/audit.py): one JSON line per search, cohort run and export."""
        return self.root / "audit.jsonl"

    @property
    def thumbs(self) -> Path:
        """The workbench's image cache (ui/app/media.py): DATA/thumbs/<study_key>/."""
        return self.root / "thumbs"

    @property
    def cohorts(self) -> Path:
        """Cohorts saved from the workbench (*.cohort.json)."""
        return self.root / "cohorts"

    @property
    def exports(self) -> Path:
        """Cohort exports written by the workbench (CSV, Parquet)."""
        return self.root / "exports"

    @property
    def demo_archive(self) -> Path:
        """The synthetic archive `cmr demo` generates and indexes."""
        return self.root / "demo-archive"

"""cmr-search: the index and the search API (architecture.md §5).

    from cmr_search.search import search, similar, reports_for, refine, label, Filter, connect
    search("amyloid LGE pattern", k=20, filters=Filter(sex="F", age=(40, 80)))   # -> polars.DataFrame
    similar("<study_key>", k=10)             # study -> study (also a vector)
    reports_for("<study_key>", k=5)          # study -> nearest reports of other studies
    refine(positive=[...], negative=[...])   # relevance feedback on studies
    label({"amyloid": ["cardiac amyloidosis", ...], ...})   # zero-shot scores for every study

The module-level functions share one client on the default data folder ($CMR_DATA or ./cmr-data, or the
server at $QDRANT_URL); `connect(data=..., url=...)` returns a client with the same methods, and so does
`connect(settings)` with a `Settings` (search/settings.py: the data folder, checkpoint and server settings,
and the rules between them).
"""
from __future__ import annotations

from .client import Client, QueryTruncatedWarning, connect
from .cohort import Cohort
from .errors import SearchError
from .filters import Filter
from .settings import Settings
from .store import Store

__all__ = ["search", "similar", "reports_for", "refine", "label", "Filter", "connect", "Client", "Cohort",
           "Store", "Settings", "SearchError", "QueryTruncatedWarning"]

_default: Client | None = None


def default_client() -> Client:
    """The shared client of the module-level functions (opened on first use)."""
    global _default
    if _default is None:
        _default = connect()
    return _default


def search(text: str, k: int = 20, filters=None, mode: str = "hybrid", view: str = "study"):
    return default_client().search(text, k=k, filters=filters, mode=mode, view=view)


def similar(study, k: int = 10, view: str = "study", filters=None):
    return default_client().similar(study, k=k, view=view, filters=filters)


def reports_for(study_key: str, k: int = 5):
    return default_client().reports_for(study_key, k=k)


def refine(positive, negative=(), k: int = 20, query: str | None = None, view: str = "study", filters=None):
    return default_client().refine(positive, negative, k=k, query=query, view=view, filters=filters)


def label(prompt_sets: dict[str, list[str]], filters=None):
    return default_client().label(prompt_sets, filters=filters)

"""cmr-search: the index and the search API (architecture.md §5; a worked example: README.md, "Python").

    from cmr_search.search import connect, Filter
    c = connect("cmr-data")                  # the data folder `cmr index` wrote (or url="http://...:6333")
    c                                        # Client(data='cmr-data', backend='embedded', studies=..., model=...)
    df = c.search("amyloid LGE pattern", k=20, filters=Filter(sex="F", age=(40, 80)))   # -> polars.DataFrame
    c.similar(df["study_key"][0], k=10)      # study -> study (also a vector)
    c.reports_for(df["study_key"][0], k=5)   # study -> nearest reports of other studies
    c.refine(positive=[...], negative=[...]) # relevance feedback on studies
    c.label({"amyloid": ["cardiac amyloidosis", ...], ...})   # calibrated zero-shot labels (write=False)
    c.cohort("dilated LV", k=100).export("dcm.csv")           # a cohort file + its re-runnable spec

The module-level functions (search, similar, reports_for, refine, label, near_duplicates, info;
cohorts: Client.cohort)
share one client on the default data folder ($CMR_DATA or ./cmr-data, or the server at $QDRANT_URL);
`connect(data=..., url=...)` returns a client with the same methods, and so does `connect(settings)` with a
`Settings` (search/settings.py: the data folder, checkpoint and server settings, and the rules between
them). help(connect) and help(Client.search) show every argument.
"""
from __future__ import annotations

from .client import Client, QueryTruncatedWarning, connect
from .cohort import Cohort
from .errors import SearchError
from .filters import Filter
from .settings import Settings
from .store import Store

__all__ = ["search", "similar", "reports_for", "refine", "label", "near_duplicates", "info",
           "Filter", "connect", "Client", "Cohort", "Store", "Settings", "SearchError", "QueryTruncatedWarning",
           "default_client"]

_default: Client | None = None


def default_client() -> Client:
    """The shared client of the module-level functions (opened on first use).

        >>> default_client()          # Client(data='cmr-data', backend='embedded', ...)
    """
    global _default
    if _default is None:
        _default = connect()
    return _default


def search(text: str, k: int = 20, filters=None, mode: str = "hybrid", view: str = "study"):
    """Text -> studies on the default client (Client.search).

        >>> search("dilated LV with reduced EF", k=5, filters={"sex": "M"})
    """
    return default_client().search(text, k=k, filters=filters, mode=mode, view=view)


def similar(study, k: int = 10, view: str = "study", filters=None):
    """Study (key or vector) -> similar studies on the default client (Client.similar).

        >>> similar("<study_key>", k=5)
    """
    return default_client().similar(study, k=k, view=view, filters=filters)


def reports_for(study_key: str, k: int = 5):
    """Study -> the nearest reports of other studies on the default client (Client.reports_for).

        >>> reports_for("<study_key>", k=3)["impression"]
    """
    return default_client().reports_for(study_key, k=k)


def refine(positive, negative=(), k: int = 20, query: str | None = None, view: str = "study", filters=None):
    """Relevance feedback on the default client (Client.refine).

        >>> refine(positive=["<key a>", "<key b>"], negative=["<key c>"], k=10)
    """
    return default_client().refine(positive, negative, k=k, query=query, view=view, filters=filters)


def label(prompt_sets: dict[str, list[str]], filters=None, write: bool = False, **kw):
    """Calibrated zero-shot labels on the default client (Client.label); write=True stores them.

        >>> label({"amyloid": ["cardiac amyloidosis"], "hcm": ["hypertrophic cardiomyopathy"]})
    """
    return default_client().label(prompt_sets, filters=filters, write=write, **kw)


def near_duplicates(threshold: float = 0.98, k: int = 10, view: str = "study", filters=None):
    """Near-duplicate study pairs on the default client (Client.near_duplicates).

        >>> near_duplicates(0.99)
    """
    return default_client().near_duplicates(threshold, k=k, view=view, filters=filters)


def info() -> dict:
    """What the default client's index holds (Client.info).

        >>> info()["points"]
    """
    return default_client().info()

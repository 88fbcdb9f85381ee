"""Errors of the search package. Each message says how to fix the problem.

`usage = True` marks errors caused by what the user typed (the CLI exits 2 for those, 1 otherwise).
"""
from __future__ import annotations


class SearchError(Exception):
    """Base class for errors raised by `search`."""
    usage = False


class QueryError(SearchError, ValueError):
    """An empty or otherwise unusable query."""
    usage = True


class UnknownFilterError(SearchError, ValueError):
    usage = True

    def __init__(self, name: str, known: tuple[str, ...]):
        super().__init__(f"unknown filter field {name!r}; known fields: {', '.join(known)}. "
                         "Example: Filter(age=(40, 80), sex='F') or --filter age=40..80.")


class FilterValueError(SearchError, ValueError):
    """A known filter field with a value of the wrong form."""
    usage = True


_HINTS = {"labels": ", or set labels with `cmr label`",
          "findings": ", or re-run `cmr index` on this data folder: an index built before report findings "
                      "were read has none"}


class FilterMatchesNothingError(FilterValueError):
    """A categorical filter value that no study in the index holds (sex=female where the index holds F
    and M), so the filter can match nothing; `held` is {value: number of studies} of that field."""

    def __init__(self, name: str, values: list, held: dict, what: str = "the index"):
        self.name, self.values, self.held = name, list(values), dict(held)
        given = ",".join(map(str, values))
        if not held:
            msg = (f"filter {name}={given} can match nothing: no study in {what} has a {name} value "
                   f"(leave the filter out{_HINTS.get(name, '')}).")
        else:
            ranked = sorted(held.items(), key=lambda vc: (-vc[1], str(vc[0])))
            shown = ", ".join(f"{v} ({c} {'study' if c == 1 else 'studies'})" for v, c in ranked[:20])
            shown += ", ..." if len(ranked) > 20 else ""
            msg = (f"filter {name}={given} can match nothing: {what} holds only these {name} values: "
                   f"{shown}. Use one of them, e.g. {name}={ranked[0][0]}.")
        super().__init__(msg)


class StudyNotFoundError(SearchError, KeyError):
    usage = True

    def __init__(self, keys: list[str], what: str = "study"):
        shown = ", ".join(repr(k) for k in keys[:5]) + (" ..." if len(keys) > 5 else "")
        super().__init__(f"no {what} with key {shown} in the index. Study keys are the salted "
                         "`study_key` column of search results (`cmr search ...`), not DICOM UIDs.")

    def __str__(self) -> str:          # KeyError would repr() the message
        return self.args[0]


class EmbedSizeMismatchError(SearchError):
    def __init__(self, index_dim: int, model_dim: int, where: str, model: str = "the model"):
        super().__init__(f"embedding size mismatch: the index at {where} holds {index_dim}-d vectors but "
                         f"{model} makes {model_dim}-d embeddings. Use the checkpoint the index was built "
                         "with, or re-index with this one (`cmr index --rebuild`).")
        self.index_dim, self.model_dim = index_dim, model_dim


class IndexLockedError(SearchError):
    def __init__(self, path: str, pid: int | None, started: str | None):
        who = f"PID {pid} (started {started})" if pid else "another process (no lock file found)"
        super().__init__(f"index is locked by {who}: the embedded store at {path} can be opened by one "
                         "process at a time. Close that process (e.g. the UI or a running `cmr index`), "
                         "or run a Qdrant server (`docker compose up -d`, then set QDRANT_URL) to share it.")
        self.pid = pid


class IndexCorruptError(SearchError):
    """Files of the embedded index (or the model saved beside it) are damaged: missing, truncated or
    overwritten. The study cache is the source of truth, so the fix is a rebuild from it."""

    def __init__(self, where: str, reason: str, data: str | None = None):
        """where: what is damaged, e.g. 'the embedded index at DATA/index/cmr_studies'."""
        d = data or "DATA"
        super().__init__(f"{where} is damaged ({reason}). Rebuild the index from the study "
                         f"cache with `cmr index --data {d} --rebuild` (add the ARCHIVE folder if {d}/cache "
                         "is gone too); nothing in the cache is lost.")


class IndexMissingError(SearchError):
    def __init__(self, where: str):
        super().__init__(f"no index at {where}. Build one with `cmr index` (or pass --data / set "
                         "CMR_DATA to the data folder that holds index/).")


class ServerUnreachableError(SearchError):
    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach the Qdrant server at {url} ({reason}). Start it with "
                         "`docker compose up -d`, check QDRANT_URL / QDRANT_API_KEY, or unset QDRANT_URL "
                         "to use the embedded store.")


class ServerSecurityError(SearchError):
    """A server connection that would go without an API key, or TLS settings that cannot be used."""
    usage = True


class PayloadError(SearchError, ValueError):
    """A study row that breaks the collection contract (missing key, raw identifiers, bad vector)."""


class CollectionOptionsError(SearchError, ValueError):
    """Shards, replicas or quantization that this backend or these values cannot have."""
    usage = True


class ModelNotFoundError(SearchError):
    def __init__(self, tried: list[str]):
        super().__init__("no model checkpoint to encode queries with (looked at: " + ", ".join(tried) +
                         "). Pass --checkpoint / connect(checkpoint=...) or set CMR_CHECKPOINT to the "
                         "checkpoint folder the index was built with (train one with `cmr train`).")


class CohortDefinitionError(SearchError, ValueError):
    """A cohort definition (a file or a dict) that cannot be read: names the file and the problem, one line
    each (search/cohort_definition.py)."""
    usage = True

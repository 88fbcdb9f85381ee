"""The audit trail (docs/privacy.md, "Audit trail"): one JSON line per search, cohort run and export,
appended to DATA/audit.jsonl.

    from cmr_search.search.audit import read_audit, export_audit
    read_audit("cmr-data", since="2025-01-01", kind="export")     # -> polars.DataFrame, oldest first
    export_audit("cmr-data", "audit.csv")                          # or .parquet

A record holds: `time` (ISO 8601, UTC), `user` (getpass.getuser(): the login name the environment gives,
else the account of the process uid) and `uid`, `host`, `event` (search, similar, reports_for, refine,
label, near_duplicates, cohort, cohort_run, export), `ok` and `error` (the exception's class name only),
the query text, `mode`, `view`, `k`, the `filters` / `criteria` as objects, counts (`results`; for refine
the number of positive and negative examples; for label the prompt count per label name and whether they
were written; near_duplicates its `threshold`; for an export `rows`, `level`
(de-identified, or identified when the link table was joined), `format` and `file`), and the index it
ran on (`collection`, `backend`, `model_id`). Never a study key, a patient key or any DICOM identifier:
`similar` and `reports_for` record whether they started from a study or a vector (`target`), not which;
refine counts its examples.
An export records its file NAME but not its folder: the name is what the user chose and finds the file
again, while a folder path names home folders and shares (sometimes a person) and adds nothing to the
audit.

Appends are safe from several processes (the workbench and a command line at once): the file is opened
with O_APPEND, locked (flock) while the one write of the whole line runs. It is created with mode 0600
whatever the umask (an existing file keeps the mode it has: a team sharing a data folder may chmod 660 it).
Records go to the data folder of the client's Settings when that folder exists, for a server connection
too; with no such folder nothing is written, silently. $CMR_AUDIT=0 (or false, no, off) turns the trail
off (tests, benches). A failed write NEVER fails the search or the export: it prints one warning on
stderr per process and the work goes on.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import fcntl
import functools
import getpass
import inspect
import json
import os
import socket
import sys
from pathlib import Path

import polars as pl

from .collection import model_id as _model_id_of
from .data_folder import DataFolder
from .errors import QueryError
from .filters import Filter, to_filter
from .safe_csv import csv_text, write_table
from .settings import Settings

ENV = "CMR_AUDIT"
OFF = ("0", "false", "no", "off")
MAX_TEXT = 2_000               # characters of a query kept (the client cuts queries to this length too)
EVENTS = ("search", "similar", "reports_for", "refine", "label", "near_duplicates", "cohort", "cohort_run",
          "export")
# column -> polars dtype of read_audit's frame, in this order; object fields come back as JSON text
SCHEMA = {"time": pl.Datetime("us", "UTC"), "user": pl.Utf8, "uid": pl.Int64, "host": pl.Utf8,
          "event": pl.Utf8, "ok": pl.Boolean, "error": pl.Utf8, "query": pl.Utf8, "mode": pl.Utf8,
          "view": pl.Utf8, "k": pl.Int64, "filters": pl.Utf8, "criteria": pl.Utf8, "results": pl.Int64,
          "target": pl.Utf8, "positives": pl.Int64, "negatives": pl.Int64, "labels": pl.Utf8, "threshold": pl.Float64,
          "write": pl.Boolean, "rows": pl.Int64, "level": pl.Utf8, "format": pl.Utf8, "file": pl.Utf8,
          "collection": pl.Utf8, "backend": pl.Utf8, "model_id": pl.Utf8}
OBJECTS = ("filters", "criteria", "labels")

_muted = contextvars.ContextVar("cmr_audit_muted", default=False)    # inside an audited call: one record
_warned = False


def enabled(environ=None) -> bool:
    """False when $CMR_AUDIT is 0, false, no or off (read at every record: tests may set it late)."""
    return (os.environ if environ is None else environ).get(ENV, "1").strip().lower() not in OFF


def audit_path(data) -> Path:
    """DATA/audit.jsonl of a data folder (a path, a Settings or a DataFolder)."""
    return DataFolder(_root(data)).audit_log


def folder_of(where) -> Path | None:
    """The data folder records of `where` (a Client, Settings, DataFolder or path; a Store on the embedded
    index: the data folder around DATA/index) go to: its data folder when that exists, else None (a server
    connection without a local data folder: no trail)."""
    where = getattr(where, "settings", where)
    backend = getattr(where, "backend", None)
    if getattr(backend, "name", None) == "embedded" and isinstance(getattr(backend, "dir", None), Path):
        where = backend.dir.parent                  # a Store: DATA/index -> DATA
    try:
        root = _root(where)
    except TypeError:
        return None
    return root if root.is_dir() else None


def record(where, event: str, **fields) -> bool:
    """Append one record for `event` to the trail of `where` (see folder_of); True when written. Never
    raises: a failure warns once on stderr. Fields that are None are left out."""
    if not enabled():
        return False
    folder = folder_of(where)
    if folder is None:
        return False
    path = DataFolder(folder).audit_log
    try:
        line = json.dumps(_entry(event, fields), ensure_ascii=False, default=str, separators=(",", ":"))
        _append(path, (line + "\n").encode("utf-8", "replace"))
        return True
    except Exception as e:                          # noqa: BLE001  the trail never fails the work it records
        _warn(path, e)
        return False


def audited(event: str):
    """Decorator: one record of `event` after each call (ok or failed), built from the call's arguments and
    result by the describer of that event. The record goes to the trail of the call's `client` argument,
    else of `self`. Calls made inside (Client.cohort's search) are not recorded again."""
    describe = _DESCRIBE[event]

    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            if _muted.get():
                return fn(*args, **kwargs)
            token, result, error = _muted.set(True), None, None
            try:
                result = fn(*args, **kwargs)
                return result
            except Exception as e:
                error = e
                raise
            finally:
                _muted.reset(token)
                _record_call(event, describe, sig, args, kwargs, result, error)
        return inner
    return wrap


def export_fields(spec: dict, *, rows: int, file: str | Path, identified: bool = False) -> dict:
    """The record of a cohort export: its query spec (query, mode, view, k, filters; never its keys), the
    rows written, the level, the format and the file's name (not its folder)."""
    name = Path(str(file)).name
    fmt = "cohort.json" if name.endswith(".cohort.json") else Path(name).suffix.lstrip(".") or None
    index = spec.get("index") if isinstance(spec.get("index"), dict) else {}
    return {"query": spec.get("query"), "mode": spec.get("mode"), "view": spec.get("view"), "k": spec.get("k"),
            "filters": _filters(spec.get("filters")), "criteria": spec.get("criteria"), "rows": rows,
            "level": "identified" if identified else "de-identified", "format": fmt, "file": name,
            "collection": index.get("collection"), "backend": index.get("backend"),
            "model_id": spec.get("model_id")}


# ---- reading --------------------------------------------------------------------------------------
def read_audit(data, since=None, kind=None) -> pl.DataFrame:
    """The trail of a data folder as a DataFrame (columns SCHEMA, oldest first; objects as JSON text);
    empty when there is none. since: a date or datetime ('2025-03-01', '2025-03-01T12:00', naive = UTC);
    kind: an event or a list of them. A line that is not a JSON object (a torn write) is skipped."""
    path = audit_path(data)
    rows = []
    if path.exists():
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    rows.append(_row(rec))
    frame = pl.DataFrame(rows, schema={k: (pl.Utf8 if k == "time" else v) for k, v in SCHEMA.items()}, orient="row")
    frame = frame.with_columns(pl.col("time").str.to_datetime(time_zone="UTC", strict=False))
    if since is not None:
        frame = frame.filter(pl.col("time") >= _since(since))
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        frame = frame.filter(pl.col("event").is_in(kinds))
    return frame


def audit_csv(frame: pl.DataFrame) -> str:
    """A read_audit frame as CSV text; a cell that starts with = + - @, a tab or a CR gets a leading ' so
    that a spreadsheet shows a query text rather than running it as a formula (search/safe_csv.py)."""
    return csv_text(frame)


def export_audit(data, out, since=None, kind=None) -> Path:
    """Write the trail (read_audit's frame) to `out`, a .csv (formula cells neutralised) or .parquet file,
    a new file 0600 like the trail itself (search/safe_csv.py); returns its path."""
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise QueryError(f"audit export to {out.name}: use a .csv or .parquet file name.")
    return write_table(read_audit(data, since, kind), out)


# ---- helpers --------------------------------------------------------------------------------------
def _root(data) -> Path:
    if isinstance(data, Settings):
        return data.data
    if isinstance(data, DataFolder):
        return data.root
    if isinstance(data, (str, Path)):
        return Path(data)
    raise TypeError(f"not a data folder: {type(data).__name__}")


def _user() -> tuple[str, int | None]:
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        return getpass.getuser(), uid
    except Exception:                               # noqa: BLE001  no login name and no passwd entry
        return (f"uid {uid}" if uid is not None else "unknown"), uid


def _entry(event: str, fields: dict) -> dict:
    user, uid = _user()
    head = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), "user": user,
            "uid": uid, "host": socket.gethostname(), "event": event, "ok": True}
    body = {k: v for k, v in fields.items() if v is not None}
    if isinstance(body.get("query"), str):
        body["query"] = " ".join(body["query"].split())[:MAX_TEXT] or None
        if body["query"] is None:
            del body["query"]
    return {**head, **body}


def _append(path: Path, line: bytes) -> None:
    """One locked O_APPEND write of the whole line; a new file is made 0600 whatever the umask."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
    except FileExistsError:
        fd = os.open(path, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(line)
        while view:                                 # a regular file takes it whole; a short write goes on
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)                                # drops the lock


def _warn(path: Path, e: Exception) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    try:
        print(f"cmr-search: the audit log {path} could not be written ({type(e).__name__}: {e}); searches "
              "and exports go on without it (this warning is shown once).", file=sys.stderr)
    except Exception:                               # noqa: BLE001  no stderr (a daemon): nothing to tell
        pass


def _record_call(event, describe, sig, args, kwargs, result, error) -> None:
    try:
        a = sig.bind(*args, **kwargs)
        a.apply_defaults()
        a = a.arguments
    except TypeError:
        return                                      # the call itself raised TypeError: nothing to describe
    where = a.get("client") or a.get("self")
    try:
        fields = {**_index_fields(where), **describe(a, result)}
    except Exception:                               # noqa: BLE001  a describer never fails the call
        fields = {}
    if error is not None:
        fields.update(ok=False, error=type(error).__name__)
    record(where, event, **fields)


def _index_fields(client) -> dict:
    store = getattr(client, "store", None)
    text, model = getattr(client, "_text", None), getattr(client, "_model", None)
    model_id = getattr(text, "model_id", None)
    if model_id is None and model is not None:
        model_id = _model_id_of(model)
    return {"collection": getattr(store, "collection", None),
            "backend": getattr(getattr(store, "backend", None), "name", None), "model_id": model_id}


def _filters(filters) -> dict | None:
    """A Filter or dict as a plain dict (None when empty); a value that is not a valid filter stays as given."""
    if not filters:
        return None
    try:
        f = filters if isinstance(filters, Filter) else to_filter(filters)
        return f.to_dict() if f is not None else None
    except Exception:                               # noqa: BLE001  a bad filter is still recorded
        return dict(filters) if isinstance(filters, dict) else {"value": str(filters)}


def _n(x) -> int | None:
    return len(x) if isinstance(x, (list, tuple)) else None


def _search(a, frame):
    return {"query": a["text"] if isinstance(a["text"], str) else None, "mode": a["mode"], "view": a["view"],
            "k": a["k"], "filters": _filters(a["filters"]), "results": getattr(frame, "height", None)}


def _similar(a, frame):
    return {"target": "study" if isinstance(a["study"], str) else "vector", "view": a["view"], "k": a["k"],
            "filters": _filters(a["filters"]), "results": getattr(frame, "height", None)}


def _reports_for(a, frame):
    return {"target": "study", "k": a["k"], "results": getattr(frame, "height", None)}


def _near_duplicates(a, frame):
    return {"threshold": a["threshold"], "view": a["view"], "k": a["k"], "filters": _filters(a["filters"]),
            "results": getattr(frame, "height", None)}


def _refine(a, frame):
    return {"query": a["query"] if isinstance(a["query"], str) else None, "positives": _n(a["positive"]),
            "negatives": _n(a["negative"]), "view": a["view"], "k": a["k"], "filters": _filters(a["filters"]),
            "results": getattr(frame, "height", None)}


def _label(a, frame):
    sets = a["prompt_sets"]
    return {"labels": {str(k): _n(v) for k, v in sets.items()} if isinstance(sets, dict) else None,
            "write": bool(a["write"]), "filters": _filters(a["filters"]), "results": getattr(frame, "height", None)}


def _cohort(a, co):
    return {"query": a["query"] if isinstance(a["query"], str) else None, "mode": a["mode"], "view": a["view"],
            "k": a["k"], "filters": _filters(a["filters"]), "results": _n(getattr(co, "keys", None))}


def _cohort_run(a, co):
    spec = a["self"].spec
    return {"query": spec.get("query"), "mode": spec.get("mode"), "view": spec.get("view"), "k": spec.get("k"),
            "filters": _filters(spec.get("filters")), "criteria": spec.get("criteria"),
            "results": _n(getattr(co, "keys", None))}


_DESCRIBE = {"search": _search, "similar": _similar, "reports_for": _reports_for, "refine": _refine,
             "near_duplicates": _near_duplicates, "label": _label, "cohort": _cohort,
             "cohort_run": _cohort_run}


def _row(rec: dict) -> dict:
    """A record -> read_audit's row: the schema's columns, each value of its type or None."""
    out = {}
    for col, dtype in SCHEMA.items():
        v = rec.get(col)
        if v is not None and col in OBJECTS:
            v = json.dumps(v, ensure_ascii=False, default=str, sort_keys=True)
        elif v is not None and dtype == pl.Int64:
            v = v if isinstance(v, int) and not isinstance(v, bool) else None
        elif v is not None and dtype == pl.Float64:
            v = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        elif v is not None and dtype == pl.Boolean:
            v = v if isinstance(v, bool) else None
        elif v is not None:
            v = str(v)
        out[col] = v
    return out


def _since(since) -> dt.datetime:
    if isinstance(since, dt.datetime):
        t = since
    elif isinstance(since, dt.date):
        t = dt.datetime(since.year, since.month, since.day)
    else:
        try:
            t = dt.datetime.fromisoformat(str(since).strip())
        except ValueError:
            raise QueryError(f"since={since!r}: give a date or time such as 2025-03-01 or 2025-03-01T12:00.") from None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)

"""Index straight from a PACS over DICOMweb: QIDO-RS finds the MR studies, WADO-RS pulls what indexing uses.

    url = dicomweb_url("dicomweb+https://pacs/dicom-web")             # or "https://pacs/dicom-web"
    pulled = pull_studies(url, StudyQuery(since="2024-01-01"), "cmr-data", salt)
    index_archive(pulled.staging, reports, settings)        # the folder path: same keys, same vectors

Per study found (QIDO-RS, ModalitiesInStudy=MR, StudyDate and StudyDescription filters): its MR series
are listed (QIDO-RS, series level: Modality, SeriesDescription, SequenceName, instance count); their
headers are read without pixels (WADO-RS study metadata) and typed by series_typing.type_study, the
classifier the folder path runs (it needs each image's geometry and timing, which QIDO does not carry);
only the series typed cine_* or lge_* are retrieved (WADO-RS, original transfer syntax). Typing the
pulled subset must give those series the same types, else every MR series is pulled.

Staged to DATA/dicomweb/studies/<study key>/<series n>/<instance n>.dcm (mode 0700/0600; the key is
identifiers.study_key of the StudyInstanceUID, with the salt of the cache), written under
DATA/dicomweb/partial/ and renamed into place when complete. DATA/dicomweb/pulled.jsonl lists the
study keys done (never a UID in clear): a re-run skips them. The staged folder is the archive that
prepare/index then read, and it is kept: prepare drops cached studies that are gone from its archive.
Requests go through one session throttled to `max_rps`; credentials come from the environment
($CMR_DICOMWEB_TOKEN -> Bearer, else $CMR_DICOMWEB_USER / $CMR_DICOMWEB_PASSWORD -> basic auth).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable
from urllib.parse import urlsplit

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from tqdm import tqdm

from cmr_search.indexer.dicom_headers import FileHeader, quiet_pydicom
from cmr_search.indexer.dicom_headers import file_header as header_from_dataset
from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.identifiers import study_key
from cmr_search.indexer.records import ErrorRecord, SeriesRecord, StudyRecord
from cmr_search.indexer.series_typing import type_study

PREFIX = "dicomweb+"
STAGING = "dicomweb"                   # DATA/dicomweb: studies/, partial/, pulled.jsonl
MANIFEST = "pulled.jsonl"
NEEDED_VIEWS = ("cine_", "lge_")       # what assembly uses (indexer/assemble.py)
ORIGINAL_SYNTAX = (("application/dicom", "*"),)
MAX_PAGES = 1000                       # QIDO pages at most (a server that ignores offset must not loop)
MAX_DOWN = 3                           # consecutive studies failing to connect: the PACS is gone, stop
TIMEOUT_S = 60.0
CONNECTION_FAILED = "connection failed (server down or unreachable)"
ENV_TOKEN, ENV_USER, ENV_PASSWORD = "CMR_DICOMWEB_TOKEN", "CMR_DICOMWEB_USER", "CMR_DICOMWEB_PASSWORD"
T_STUDY_UID, T_SERIES_UID, T_MODALITY, T_N_INSTANCES = "0020000D", "0020000E", "00080060", "00201209"
SERIES_FIELDS = ["Modality", "SeriesDescription", "SequenceName", "NumberOfSeriesRelatedInstances"]


class DicomwebError(IndexerError):
    """The PACS cannot be used (unreachable, credentials refused, bad URL or query); `usage`: a bad flag."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


@dataclass
class StudyQuery:
    """Which studies to pull: StudyDate range or day (YYYY-MM-DD or YYYYMMDD), StudyDescription pattern
    (QIDO wildcards * and ?). Modality is always MR."""
    since: str | None = None
    until: str | None = None
    study_date: str | None = None
    description: str | None = None

    def filters(self) -> dict[str, str]:
        """The QIDO-RS study filters; DicomwebError(usage) for a bad date or a day given with a range."""
        out = {"ModalitiesInStudy": "MR"}
        if self.study_date and (self.since or self.until):
            raise DicomwebError("give --study-date or --since/--until, not both", usage=True)
        if self.study_date:
            out["StudyDate"] = _dicom_date(self.study_date, "--study-date")
        elif self.since or self.until:
            lo = _dicom_date(self.since, "--since") if self.since else ""
            hi = _dicom_date(self.until, "--until") if self.until else ""
            if lo and hi and lo > hi:
                raise DicomwebError(f"--since {self.since} is after --until {self.until}", usage=True)
            out["StudyDate"] = f"{lo}-{hi}"
        if self.description:
            out["StudyDescription"] = self.description
        return out


@dataclass
class PullResult:
    staging: Path                      # DATA/dicomweb/studies: the archive folder to prepare and index
    n_found: int = 0                   # MR studies the query matched
    n_pulled: int = 0                  # studies pulled this run
    n_skipped: int = 0                 # pulled by an earlier run (in the manifest)
    n_series: int = 0                  # series retrieved this run
    n_series_seen: int = 0             # MR series listed in the studies pulled this run
    n_files: int = 0                   # instances written this run
    errors: list[ErrorRecord] = field(default_factory=list)     # studies left out (named by key)


def _dicom_date(text: str, flag: str) -> str:
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).strftime("%Y%m%d")
        except ValueError:
            pass
    raise DicomwebError(f"{flag} {text!r}: not a date; use YYYY-MM-DD", usage=True)


def dicomweb_url(source: str) -> str:
    """'dicomweb+https://host/dicom-web' or 'https://host/dicom-web' -> the http(s) DICOMweb root."""
    url = source[len(PREFIX):] if source.startswith(PREFIX) else source
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DicomwebError(f"DICOMweb URL {source!r}: expected http(s)://HOST[:PORT]/PATH (the server's "
                            "DICOMweb root, e.g. https://pacs.example.org/dicom-web)", usage=True)
    if parts.username or parts.password:
        raise DicomwebError(f"DICOMweb URL of {parts.hostname}: no credentials in the URL (they would show in "
                            f"logs and `ps`); set {ENV_USER}/{ENV_PASSWORD} or {ENV_TOKEN}", usage=True)
    return url.rstrip("/")


class ThrottledSession(requests.Session):
    """A requests session that starts at most `max_rps` requests a second (0: no limit) and remembers the
    last response's Warning header (QIDO-RS says there that more results can be requested). QIDO
    wildcards (* ?) go unescaped."""

    def __init__(self, max_rps: float = 0.0):
        super().__init__()
        self.interval = 1.0 / max_rps if max_rps > 0 else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()
        self.warning = ""

    def request(self, method, url, *args, **kwargs):
        if "?" in url:                 # QIDO wildcards unescaped (RFC 3986 allows them in a query): some
            path, query = url.split("?", 1)     # servers (Orthanc 1.10) match %2A literally
            url = f"{path}?{query.replace('%2A', '*').replace('%3F', '?')}"
        with self.lock:
            now = time.monotonic()
            wait = self.next_at - now
            self.next_at = max(now, self.next_at) + self.interval
        if wait > 0:
            time.sleep(wait)
        response = super().request(method, url, *args, **kwargs)
        self.warning = response.headers.get("Warning", "")
        return response


def session_from_env(environ=None, max_rps: float = 0.0) -> ThrottledSession:
    """A throttled session with the credentials of the environment: $CMR_DICOMWEB_TOKEN (Bearer), else
    $CMR_DICOMWEB_USER and $CMR_DICOMWEB_PASSWORD (basic auth), else none."""
    env = os.environ if environ is None else environ
    if max_rps < 0:
        raise DicomwebError(f"--max-rps {max_rps}: must be 0 (no limit) or more", usage=True)
    session = ThrottledSession(max_rps)
    user, password = env.get(ENV_USER, ""), env.get(ENV_PASSWORD, "")
    if env.get(ENV_TOKEN):
        session.headers["Authorization"] = f"Bearer {env[ENV_TOKEN]}"
    elif user or password:
        if not (user and password):
            raise DicomwebError(f"set both {ENV_USER} and {ENV_PASSWORD} for basic auth (or "
                                f"{ENV_TOKEN} for a bearer token)", usage=True)
        session.auth = (user, password)
    return session


def _why(exc: BaseException) -> str:
    """What went wrong, without the request URL (it holds the study's UIDs)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        r = exc.response
        hint = {401: ": credentials missing or refused", 403: ": access forbidden for these credentials",
                404: ": not found on the server"}.get(r.status_code, "")
        return f"HTTP {r.status_code} {r.reason}{hint}"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {TIMEOUT_S:.0f} s"
    if isinstance(exc, requests.ConnectionError):
        return CONNECTION_FAILED
    return type(exc).__name__


def _value(item: dict, tag: str, default=""):
    return (item.get(tag, {}).get("Value") or [default])[0]


def find_studies(client: DICOMwebClient, session: ThrottledSession, query: StudyQuery) -> list[str]:
    """StudyInstanceUIDs of the MR studies matching `query`, in the server's order. Pages on only while
    the server says there are more results (QIDO-RS Warning header); servers whose offset paging is
    unreliable (Orthanc's, under a ModalitiesInStudy filter) answer everything at once."""
    filters, uids, seen = query.filters(), [], set()
    for _ in range(MAX_PAGES):
        page = client.search_for_studies(search_filters=filters, offset=len(uids) or None)
        new = [u for u in (_value(s, T_STUDY_UID) for s in page) if u and u not in seen]
        seen.update(new)
        uids += new
        if not new or "additional results" not in session.warning.lower():
            break
    return uids


def _headers(metadata: list[dict], mr_series: set[str]) -> list[FileHeader]:
    """WADO-RS metadata of a study -> FileHeaders (as the folder scan reads them) of its MR series."""
    out = []
    with quiet_pydicom():
        for i, item in enumerate(metadata):
            if _value(item, T_SERIES_UID) not in mr_series:
                continue
            try:
                ds = pydicom.Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b"")
                frames = int(ds.get("NumberOfFrames") or 1)
                size = int(ds.Rows) * int(ds.Columns) * max(1, frames) * 2
                st = SimpleNamespace(st_size=size, st_mtime_ns=0)
                out.append(header_from_dataset(f"metadata/{i}", st, ds))
            except Exception:      # an instance the folder scan would also leave out: not typed
                continue
    return out


def _study_record(uid: str, headers: list[FileHeader]) -> StudyRecord:
    """FileHeaders -> a StudyRecord grouped by series (what type_study reads)."""
    study = StudyRecord(study_instance_uid=uid, source_dir="", **headers[0].study)
    series: dict[str, SeriesRecord] = {}
    for h in headers:
        if h.series_uid not in series:
            series[h.series_uid] = SeriesRecord(series_instance_uid=h.series_uid, **h.series)
            study.series.append(series[h.series_uid])
        series[h.series_uid].instances.extend(h.instances)
    last = 1 << 30                        # the folder scan's order: SeriesNumber, InstanceNumber
    study.series.sort(key=lambda s: (last if s.series_number is None else s.series_number, s.series_instance_uid))
    for s in study.series:
        s.instances.sort(key=lambda i: (last if i.instance_number is None else i.instance_number,
                                        i.sop_instance_uid, i.frame))
    return study


def needed_series(study: StudyRecord) -> list[str]:
    """SeriesInstanceUIDs that assembly uses (typed cine_* / lge_*), or every series when typing the
    subset alone would type them differently (the pulled study must be typed as the whole one)."""
    types = type_study(study)
    keep = [s for s in study.series if types[s.series_instance_uid].view.startswith(NEEDED_VIEWS)]
    if not keep:
        return []
    subset = StudyRecord(**{**study.__dict__, "series": keep})
    again = type_study(subset)
    if any(again[s.series_instance_uid].view != types[s.series_instance_uid].view for s in keep):
        return [s.series_instance_uid for s in study.series]
    return [s.series_instance_uid for s in keep]


def plan_study(client: DICOMwebClient, uid: str) -> tuple[list[str], dict[str, int], int]:
    """(series to pull, instances per series, MR series in the study) from QIDO-RS series + metadata."""
    listed = client.search_for_series(uid, search_filters={"Modality": "MR"}, fields=SERIES_FIELDS)
    mr = {_value(s, T_SERIES_UID) for s in listed
          if _value(s, T_MODALITY, "MR") == "MR" and int(_value(s, T_N_INSTANCES, 1) or 0) > 0}
    headers = _headers(client.retrieve_study_metadata(uid), mr) if mr else []
    if not headers:
        return [], {}, len(mr)
    study = _study_record(uid, headers)
    counts = {s.series_instance_uid: len({i.sop_instance_uid for i in s.instances}) for s in study.series}
    return needed_series(study), counts, len(mr)


def _write_private(path: Path, ds: pydicom.Dataset) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        ds.save_as(f)


def fetch_series(client: DICOMwebClient, uid: str, series: list[str], counts: dict[str, int],
                 dest: Path) -> int:
    """Retrieve `series` of study `uid` into dest/<n>/<m>.dcm; -> files written. An incomplete series
    (fewer instances than its metadata lists) raises DicomwebError."""
    n_files = 0
    for n, series_uid in enumerate(series, 1):
        folder = dest / f"{n:03d}"
        folder.mkdir(mode=0o700, parents=True)
        got = 0
        for got, ds in enumerate(client.iter_series(uid, series_uid, media_types=ORIGINAL_SYNTAX), 1):
            _write_private(folder / f"{got:05d}.dcm", ds)
        if got < counts.get(series_uid, 0):
            raise DicomwebError(f"series {n}: {got} of {counts[series_uid]} instances retrieved")
        n_files += got
    return n_files


class Manifest:
    """DATA/dicomweb/pulled.jsonl: one line per study pulled completely (its key, never its UID)."""

    def __init__(self, root: Path):
        self.path = root / MANIFEST
        self.keys: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    self.keys.add(json.loads(line)["study_key"])
                except (ValueError, KeyError, TypeError):
                    continue       # a line cut short by a kill: that study is pulled again

    def add(self, key: str, n_series: int, n_files: int) -> None:
        line = json.dumps({"study_key": key, "series": n_series, "files": n_files,
                           "pulled_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.keys.add(key)


def staging_root(data: str | Path) -> Path:
    """DATA/dicomweb, created private (0700) with its studies/ and an empty partial/ (a killed run's)."""
    root = Path(data) / STAGING
    shutil.rmtree(root / "partial", ignore_errors=True)
    for sub in (root, root / "studies", root / "partial"):
        sub.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(sub, 0o700)
    return root


def _pull_one(client: DICOMwebClient, uid: str, key: str, root: Path, manifest: Manifest,
              result: PullResult) -> None:
    """Plan, retrieve and stage one study; raises on failure (the caller records it)."""
    series, counts, n_mr = plan_study(client, uid)
    if not series:
        raise DicomwebError(f"no cine or LGE series among its {n_mr} MR series; not pulled")
    partial, final = root / "partial" / key, root / "studies" / key
    try:
        n_files = fetch_series(client, uid, series, counts, partial)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    manifest.add(key, len(series), n_files)
    result.n_pulled += 1
    result.n_series += len(series)
    result.n_series_seen += n_mr
    result.n_files += n_files


def connect(url: str, environ=None, max_rps: float = 0.0) -> tuple[DICOMwebClient, ThrottledSession]:
    """A DICOMweb client of `url` over a throttled, authenticated session (408/429/503/504 retried twice)."""
    session = session_from_env(environ, max_rps)
    client = DICOMwebClient(dicomweb_url(url), session=session, timeout=TIMEOUT_S)
    client.set_http_retry_params(max_attempts=3, wait_exponential_multiplier=500)
    return client, session


def pull_studies(url: str, query: StudyQuery, data: str | Path, salt: bytes, *, environ=None,
                 max_rps: float = 0.0, select: Callable[[str], bool] | None = None,
                 progress: bool = True) -> PullResult:
    """Find the query's MR studies on the PACS at `url` and stage the series indexing needs under
    DATA/dicomweb/studies (module docstring). Studies in the manifest are skipped; `select(study_key)`
    False skips a study (shards). A study that fails is recorded (by key) and left for the next run;
    DicomwebError when the PACS cannot be queried, or stops answering (MAX_DOWN studies in a row)."""
    client, session = connect(url, environ, max_rps)
    root = staging_root(data)
    result, manifest = PullResult(root / "studies"), Manifest(root)
    try:
        uids = find_studies(client, session, query)
    except requests.RequestException as exc:
        raise DicomwebError(f"cannot query the PACS at {dicomweb_url(url)}: {_why(exc)}; check the URL, that "
                            f"the server is up, and {ENV_TOKEN} or {ENV_USER}/{ENV_PASSWORD}") from None
    result.n_found, down = len(uids), 0
    for uid in tqdm(uids, unit="study", desc="dicomweb", disable=not progress):
        key = study_key(uid, salt)
        if select is not None and not select(key):
            continue
        if key in manifest.keys and (root / "studies" / key).is_dir():
            result.n_skipped += 1
            continue
        reason = _pull_or_why(client, uid, key, root, manifest, result)
        if reason is not None:
            result.errors.append(ErrorRecord(dicomweb_url(url), key, "dicomweb", reason))
        down = down + 1 if reason == CONNECTION_FAILED else 0
        if down >= MAX_DOWN:
            raise DicomwebError(f"the PACS at {dicomweb_url(url)} stopped answering ({reason}) after "
                                f"{result.n_pulled} studies pulled; run again to resume")
    return result


def _pull_or_why(client, uid: str, key: str, root: Path, manifest: Manifest, result: PullResult) -> str | None:
    """_pull_one, with a failure of this study turned into its reason (None: pulled). Local file errors
    (a full disk) are not the study's fault: they stop the run."""
    try:
        _pull_one(client, uid, key, root, manifest, result)
        return None
    except requests.RequestException as exc:
        return _why(exc)
    except DicomwebError as exc:
        return str(exc)
    except OSError:
        raise
    except Exception as exc:             # a part that does not parse, a bad value: this study only
        return f"unreadable answer ({type(exc).__name__})"

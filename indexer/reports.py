"""Radiology reports: read them from any common layout, join them to studies, keep the impression.
Identifiers are stripped from the text by redact.py (`deidentify_text` is its older name here).

Layouts read by `read_reports` (docs/indexing.md, "Reports"): CSV or TSV (the separator , tab ; or | is
taken from the header line), Parquet, JSON Lines (one object per line) or a JSON array, or a folder
holding one text file per study whose stem is the accession number or StudyInstanceUID. Text is decoded
as UTF-8 when it is UTF-8, else in the encoding charset-normalizer detects (`load_reports` says which:
never a silent guess). The key column is found by name (accession_number, accession, AccessionNumber,
study_instance_uid, StudyInstanceUID, ...); the text column likewise (report, text, report_text,
impression, ...). A report matches a study when its key equals the study's accession number or its
StudyInstanceUID. `match_reports` also counts what matched (`ReportSummary`) and keeps the keys that
matched nothing, which `write_unmatched_keys` writes to a 0600 file in the cache folder: they are the
site's accession numbers, never printed.
"""
from __future__ import annotations

import codecs
import io
import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import charset_normalizer
import polars as pl
import pyarrow.parquet as pq

from cmr_search.indexer.errors import IndexerError, ReportFormatError
from cmr_search.indexer.redact import redact_report as deidentify_text  # noqa: F401  (older name)
from cmr_search.indexer.records import ErrorRecord, StudyRecord
from cmr_search.search.private_files import private_dir, write_private

KEY_NAMES = ("accessionnumber", "accession", "accessionno", "accno", "studyinstanceuid", "studyuid",
             "studyinstance", "uid", "studykey", "key")
TEXT_NAMES = ("report", "reporttext", "text", "impression", "findings", "body", "content")
TEXT_SUFFIXES = (".txt", ".text", ".rpt", ".md")
SEPARATORS = (",", "\t", ";", "|")
PLAIN = ("utf-8", "utf_8", "ascii")        # encodings read without a word to the user
WESTERN = ("cp1252", "latin_1", "iso8859_15")   # preferred when a text fits them as well as another
CHAOS_MARGIN = 0.02             # matches this close to the best in charset-normalizer's 'chaos' are as good
UNMATCHED_KEYS_FILE = "unmatched_report_keys.txt"
SUMMARY_FILE = "report_summary.json"
DOCS = "docs/indexing.md (section Reports)"


class ReportsMatchNothingError(IndexerError):
    """A reports file none of whose rows matches a study of the archive (or that holds no rows)."""


@dataclass
class ReportSource:
    """How a reports file was read: its format ('csv', 'tsv', 'parquet', 'jsonl', 'json', 'folder') and
    text encoding ('' for Parquet; for a folder every encoding met, e.g. 'cp1252 (3 files), utf-8')."""
    path: str
    format: str
    encoding: str

    @property
    def plain(self) -> bool:
        """True when the encoding is UTF-8/ASCII (or binary): nothing to tell the user."""
        return not self.encoding or all(e.split(" (")[0] in PLAIN for e in self.encoding.split(", "))


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _pick_column(columns: list[str], wanted: tuple[str, ...], what: str, path: Path) -> str:
    by_norm = {_norm(c): c for c in columns}
    for w in wanted:
        if w in by_norm:
            return by_norm[w]
    raise ReportFormatError(
        f"{path}: no {what} column among {columns}. Rename one to "
        f"{' / '.join(wanted[:4])} (case and underscores do not matter); see {DOCS}.")


def decode_text(raw: bytes, path) -> tuple[str, str]:
    """Bytes -> (text, encoding): UTF-8 (a BOM dropped) when they are UTF-8, else what charset-normalizer
    detects; ReportFormatError when it finds no encoding."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8"), "ascii" if raw.isascii() else "utf-8"
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(raw))
    if not matches:
        raise ReportFormatError(f"{path}: the text is not UTF-8 and its encoding could not be detected. "
                                f"Save it as UTF-8 (e.g. 'CSV UTF-8' in Excel); see {DOCS}.")
    return _western(raw, matches) or (str(matches[0]), matches[0].encoding)


def _western(raw: bytes, matches) -> tuple[str, str] | None:
    """A short text fits many code pages equally well (charset-normalizer may rank mac_latin2 above
    Windows-1252 for 'café'): among the matches about as clean as the best, a Western European code
    page that decodes the bytes to the same text is taken, in the order of WESTERN."""
    close = [m for m in matches if m.chaos <= matches[0].chaos + CHAOS_MARGIN]
    for enc in WESTERN:
        if any(enc in m.could_be_from_charset for m in close):
            try:
                return raw.decode(enc), enc
            except UnicodeDecodeError:        # charset-normalizer judged on a sample of the bytes
                continue
    return None


def _separator(text: str, suffix: str) -> str:
    """The separator of a delimited file: tab for .tsv, else the most frequent of SEPARATORS in the
    header line (',' when none is there)."""
    if suffix == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    best = max(SEPARATORS, key=header.count)
    return best if header.count(best) else ","


def _parse(path: Path, suffix: str) -> tuple[pl.DataFrame, ReportSource]:
    if suffix == ".parquet":
        return _read_parquet(path), ReportSource(str(path), "parquet", "")
    text, encoding = decode_text(path.read_bytes(), path)
    data = io.BytesIO(text.encode("utf-8"))
    if suffix in (".jsonl", ".ndjson", ".json"):
        if suffix == ".json" and text.lstrip().startswith("["):
            return pl.read_json(data), ReportSource(str(path), "json", encoding)
        return pl.read_ndjson(data), ReportSource(str(path), "jsonl", encoding)
    sep = _separator(text, suffix)
    df = pl.read_csv(data, separator=sep, infer_schema_length=0)      # all strings: keep 0-prefixes
    return df, ReportSource(str(path), "tsv" if sep == "\t" else "csv", encoding)


def _read_table(path: Path) -> tuple[pl.DataFrame, ReportSource]:
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt"):
        raise ReportFormatError(f"{path}: unknown reports format {suffix!r}; use .csv, .tsv, .parquet, "
                                ".jsonl or a folder of .txt files named by accession number or "
                                f"StudyInstanceUID (see {DOCS}).")
    try:
        return _parse(path, suffix)
    except (KeyboardInterrupt, SystemExit, ReportFormatError):
        raise
    except BaseException as exc:   # polars raises many types, and Rust panics (PanicException is no Exception)
        raise ReportFormatError(f"{path}: cannot be read as {suffix[1:]} ({str(exc)[:300]}). "
                                f"Check the file format or convert it to CSV; see {DOCS}.") from None


def _read_parquet(path: Path) -> pl.DataFrame:
    """Through pyarrow, which checks a corrupt file and raises: polars' own reader aborts the whole
    process on some (a 2**61-byte allocation; docs/fuzzing.md). Schema metadata is dropped (polars
    panics on a damaged one); full validation catches text columns that are not UTF-8."""
    table = pq.read_table(path).replace_schema_metadata(None)
    table.validate(full=True)
    return pl.from_arrow(table)


def _read_folder(path: Path) -> tuple[pl.DataFrame, ReportSource]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    rows, encodings = [], Counter()
    for p in files:
        raw = p.read_bytes()
        try:
            text, enc = decode_text(raw, p)
        except ReportFormatError:             # one undecodable file never stops the folder: said below
            text, enc = raw.decode("utf-8", "replace"), "undetected (UTF-8 with replacements)"
        encodings[enc] += 1
        # a file name that is not UTF-8 keeps its readable part (it then matches no study: reported by join)
        rows.append((os.fsencode(p.stem).decode("utf-8", "replace"), text))
    df = pl.DataFrame(rows, schema={"key": pl.Utf8, "report": pl.Utf8}, orient="row")
    words = ", ".join(e if len(encodings) == 1 else f"{e} ({n} files)" for e, n in encodings.most_common())
    return df, ReportSource(str(path), "folder", words)


def _as_text(raw: pl.DataFrame, key: str, text: str, path: Path) -> pl.DataFrame:
    """The key and text columns as strings; ReportFormatError for lists, objects or non-UTF-8 bytes."""
    try:
        return raw.select(pl.col(key).cast(pl.Utf8).alias("key"), pl.col(text).cast(pl.Utf8).alias("report"))
    except pl.exceptions.PolarsError as exc:
        raise ReportFormatError(
            f"{path}: column {key!r} ({raw.schema[key]}) or {text!r} ({raw.schema[text]}) is not text "
            f"({str(exc).splitlines()[0]}). Store the key and the report as plain strings.") from None


def read_reports(path: str | Path) -> pl.DataFrame:
    """Reports at `path` -> DataFrame(key: str, report: str), one row per report, blank rows dropped."""
    return load_reports(path)[0]


def load_reports(path: str | Path) -> tuple[pl.DataFrame, ReportSource]:
    """read_reports, and how the file was read (format and the text encoding detected)."""
    path = Path(path)
    if not path.exists():
        raise ReportFormatError(f"reports path {path} does not exist; pass --reports FILE or a folder.")
    if path.is_dir():
        df, source = _read_folder(path)
    else:
        raw, source = _read_table(path)
        key = _pick_column(raw.columns, KEY_NAMES, "key (accession number or StudyInstanceUID)", path)
        text = _pick_column(raw.columns, TEXT_NAMES, "report text", path)
        df = _as_text(raw, key, text, path)
    df = df.with_columns(pl.col("key").str.strip_chars(), pl.col("report").fill_null(""))
    return df.filter(pl.col("key").is_not_null() & (pl.col("key") != "")), source


def join_reports(studies: list[StudyRecord], reports: pl.DataFrame,
                 source: str = "") -> tuple[dict[str, str], list[ErrorRecord]]:
    """Match reports to studies by accession number or StudyInstanceUID.

    Returns (StudyInstanceUID -> report text, errors). Errors name unmatched reports by row number only
    (never by their raw key) and duplicate reports; studies without a report are the caller's QA matter.
    """
    joined, errors, _, _ = _join(studies, reports, source)
    return joined, errors


def _join(studies: list[StudyRecord], reports: pl.DataFrame, source: str
          ) -> tuple[dict[str, str], list[ErrorRecord], list[str], int]:
    """join_reports, plus the keys that matched no study and the number of second reports."""
    lookup: dict[str, str] = {}
    for s in studies:
        for k in (s.accession_number.strip(), s.study_instance_uid.strip()):
            if k:
                lookup.setdefault(k, s.study_instance_uid)
    joined: dict[str, str] = {}
    errors: list[ErrorRecord] = []
    unmatched, duplicates = [], 0
    for row, (key, text) in enumerate(reports.select("key", "report").iter_rows()):
        uid = lookup.get(key)
        if uid is None:
            unmatched.append(key)
            errors.append(ErrorRecord(source, "", "report",
                                      f"report row {row} matches no study in the archive (by accession "
                                      "number or StudyInstanceUID); check the key column"))
        elif uid in joined:
            duplicates += 1
            errors.append(ErrorRecord(source, "", "report",
                                      f"report row {row} is a second report for one study; kept the first"))
        else:
            joined[uid] = text
    return joined, errors, unmatched, duplicates


@dataclass
class ReportSummary:
    """What a run did with its reports file: counts only (no identifiers), saved as SUMMARY_FILE in the
    cache folder so that `cmr index` can print it after `prepare`."""
    source: str
    format: str
    encoding: str
    rows: int                  # report rows with a key
    studies: int               # studies found in the archive
    with_report: int           # ... of which have a report
    unmatched: int             # report rows that match no study
    duplicates: int            # second reports of a study (the first is kept)
    keys_file: str = ""        # where the unmatched keys are (0600), "" when there are none

    def lines(self) -> list[str]:
        """The summary in words, e.g. 'reports: 80 of 100 studies have a report; 20 without; 5 report
        rows matched no study (keys in FILE, readable by you only)'."""
        out = []
        if self.encoding and not ReportSource(self.source, self.format, self.encoding).plain:
            out.append(f"reports: read {self.source} as {self.format}, text encoding {self.encoding} "
                       "(detected: not UTF-8; check a few impressions if it looks wrong)")
        line = (f"reports: {self.with_report} of {self.studies} studies have a report; "
                f"{self.studies - self.with_report} without")
        if self.unmatched:
            line += (f"; {self.unmatched} report rows matched no study (keys in {self.keys_file}, "
                     "readable by you only)")
        if self.duplicates:
            line += f"; {self.duplicates} second reports of a study ignored"
        return [*out, line]

    def save(self, folder) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / SUMMARY_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder) -> "ReportSummary | None":
        """The summary the last run in `folder` saved; None without one (no reports given)."""
        try:
            return cls(**json.loads((Path(folder) / SUMMARY_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @staticmethod
    def clear(folder) -> None:
        (Path(folder) / SUMMARY_FILE).unlink(missing_ok=True)


def match_reports(studies: list[StudyRecord], path, folder
                  ) -> tuple[dict[str, str], list[ErrorRecord], ReportSummary]:
    """Read the reports at `path`, join them to `studies`, write the keys that match no study to
    `folder`/UNMATCHED_KEYS_FILE (0600) and the summary to `folder`/SUMMARY_FILE. Raises
    ReportsMatchNothingError (after writing both) when there are studies and no report row matches one."""
    df, source = load_reports(path)
    joined, errors, unmatched, dups = _join(studies, df, str(path))
    keys_file = write_unmatched_keys(folder, unmatched)
    summary = ReportSummary(str(path), source.format, source.encoding, df.height, len(studies), len(joined),
                            len(unmatched), dups, str(keys_file or ""))
    summary.save(folder)
    if studies and not joined:
        raise ReportsMatchNothingError(_nothing_matched(summary))
    return joined, errors, summary


def _nothing_matched(s: ReportSummary) -> str:
    if not s.rows:
        return (f"reports file {s.source} holds no report rows (read as {s.format}); nothing was cached. "
                f"Give the file with the reports, or leave --reports out; see {DOCS}.")
    return (f"none of the {s.rows} report rows in {s.source} matched a study of the archive ({s.studies} "
            "studies; a row matches by accession number or StudyInstanceUID), so nothing was cached. Check "
            "that the key column holds these studies' accession numbers, or leave --reports out; see "
            f"{DOCS}. The unmatched keys are in {s.keys_file} (readable by you only).")


def write_unmatched_keys(folder, keys: list[str]) -> Path | None:
    """Keys matching no study, one a line, to `folder`/UNMATCHED_KEYS_FILE, a new file 0600 (they
    are the site's accession numbers); an older file is removed when there are none. -> its path."""
    path = Path(folder) / UNMATCHED_KEYS_FILE
    if not keys:
        path.unlink(missing_ok=True)
        return None
    private_dir(path.parent)
    text = "".join(k.replace("\r", "\\r").replace("\n", "\\n") + "\n" for k in sorted(set(keys)))
    return write_private(path, text.encode("utf-8", "replace"))


_HEADER = re.compile(r"^[ \t]*(impression|conclusions?|summary|opinion)\b[ \t]*:?[ \t]*",
                     re.IGNORECASE | re.MULTILINE)
_ANY_HEADER = re.compile(r"^[ \t]*[A-Za-z][A-Za-z /&-]{2,40}:", re.MULTILINE)


def extract_impression(text: str) -> str:
    """The IMPRESSION / Conclusion / Summary section of a report, else the whole text (stripped)."""
    text = text or ""
    matches = list(_HEADER.finditer(text))
    if not matches:
        return text.strip()
    order = ("impression", "conclusion", "conclusions", "summary", "opinion")
    best = min(matches, key=lambda m: (order.index(m.group(1).lower()), m.start()))
    rest = text[best.end():]
    nxt = _ANY_HEADER.search(rest, 1)
    section = rest[:nxt.start()] if nxt else rest
    return section.strip() or text.strip()

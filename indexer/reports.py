"""Radiology reports: read them from any common layout, join them to studies, keep the impression.
Identifiers are stripped from the text by redact.py (`deidentify_text` is its older name here).

Layouts read by `read_reports`: CSV, Parquet, JSONL (one object per line), or a folder holding one text
file per study whose stem is the accession number or StudyInstanceUID. The key column is found by name
(accession_number, accession, AccessionNumber, study_instance_uid, StudyInstanceUID, ...); the text column
likewise (report, text, report_text, impression, ...). A report matches a study when its key equals the
study's accession number or its StudyInstanceUID.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from cmr_search.indexer.errors import ReportFormatError
from cmr_search.indexer.redact import redact_report as deidentify_text  # noqa: F401  (older name)
from cmr_search.indexer.records import ErrorRecord, StudyRecord

KEY_NAMES = ("accessionnumber", "accession", "accessionno", "accno", "studyinstanceuid", "studyuid",
             "studyinstance", "uid", "studykey", "key")
TEXT_NAMES = ("report", "reporttext", "text", "impression", "findings", "body", "content")
TEXT_SUFFIXES = (".txt", ".text", ".rpt", ".md")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _pick_column(columns: list[str], wanted: tuple[str, ...], what: str, path: Path) -> str:
    by_norm = {_norm(c): c for c in columns}
    for w in wanted:
        if w in by_norm:
            return by_norm[w]
    raise ReportFormatError(
        f"{path}: no {what} column among {columns}. Rename one to "
        f"{' / '.join(wanted[:4])} (case and underscores do not matter).")


def _read_table(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return _read_parquet(path)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pl.read_ndjson(path)
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            return pl.read_csv(path, separator=sep, infer_schema_length=0)   # all strings: keep 0-prefixes
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:   # polars raises many types, and Rust panics (PanicException is no Exception)
        raise ReportFormatError(f"{path}: cannot be read as {suffix[1:]} ({str(exc)[:300]}). "
                                "Check the file format or convert it to CSV.") from None
    raise ReportFormatError(f"{path}: unknown reports format {suffix!r}; use .csv, .parquet, .jsonl "
                            "or a folder of .txt files named by accession number or StudyInstanceUID.")


def _read_parquet(path: Path) -> pl.DataFrame:
    """Through pyarrow, which checks a corrupt file and raises: polars' own reader aborts the whole
    process on some (a 2**61-byte allocation; docs/fuzzing.md). Schema metadata is dropped (polars
    panics on a damaged one); full validation catches text columns that are not UTF-8."""
    table = pq.read_table(path).replace_schema_metadata(None)
    table.validate(full=True)
    return pl.from_arrow(table)


def _read_folder(path: Path) -> pl.DataFrame:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    # a file name that is not UTF-8 keeps its readable part (it then matches no study: reported by join)
    rows = [(os.fsencode(p.stem).decode("utf-8", "replace"), p.read_text(errors="replace")) for p in files]
    return pl.DataFrame(rows, schema={"key": pl.Utf8, "report": pl.Utf8}, orient="row")


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
    path = Path(path)
    if not path.exists():
        raise ReportFormatError(f"reports path {path} does not exist; pass --reports FILE or a folder.")
    if path.is_dir():
        df = _read_folder(path)
    else:
        raw = _read_table(path)
        key = _pick_column(raw.columns, KEY_NAMES, "key (accession number or StudyInstanceUID)", path)
        text = _pick_column(raw.columns, TEXT_NAMES, "report text", path)
        df = _as_text(raw, key, text, path)
    df = df.with_columns(pl.col("key").str.strip_chars(), pl.col("report").fill_null(""))
    return df.filter(pl.col("key").is_not_null() & (pl.col("key") != ""))


def join_reports(studies: list[StudyRecord], reports: pl.DataFrame,
                 source: str = "") -> tuple[dict[str, str], list[ErrorRecord]]:
    """Match reports to studies by accession number or StudyInstanceUID.

    Returns (StudyInstanceUID -> report text, errors). Errors name unmatched reports by row number only
    (never by their raw key) and duplicate reports; studies without a report are the caller's QA matter.
    """
    lookup: dict[str, str] = {}
    for s in studies:
        for k in (s.accession_number.strip(), s.study_instance_uid.strip()):
            if k:
                lookup.setdefault(k, s.study_instance_uid)
    joined: dict[str, str] = {}
    errors: list[ErrorRecord] = []
    for row, (key, text) in enumerate(reports.select("key", "report").iter_rows()):
        uid = lookup.get(key)
        if uid is None:
            errors.append(ErrorRecord(source, "", "report",
                                      f"report row {row} matches no study in the archive (by accession "
                                      "number or StudyInstanceUID); check the key column"))
        elif uid in joined:
            errors.append(ErrorRecord(source, "", "report",
                                      f"report row {row} is a second report for one study; kept the first"))
        else:
            joined[uid] = text
    return joined, errors


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

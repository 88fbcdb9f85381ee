"""Radiology reports: read them from any common layout, join them to studies, keep the impression,
and strip identifiers from the text.

Layouts read by `read_reports`: CSV, Parquet, JSONL (one object per line), or a folder holding one text
file per study whose stem is the accession number or StudyInstanceUID. The key column is found by name
(accession_number, accession, AccessionNumber, study_instance_uid, StudyInstanceUID, ...); the text column
likewise (report, text, report_text, impression, ...). A report matches a study when its key equals the
study's accession number or its StudyInstanceUID.
"""
from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from indexer.errors import ReportFormatError
from indexer.records import ErrorRecord, StudyRecord

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
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pl.read_ndjson(path)
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            return pl.read_csv(path, separator=sep, infer_schema_length=0)   # all strings: keep 0-prefixes
    except Exception as exc:   # polars raises many types; name the file and the cause
        raise ReportFormatError(f"{path}: cannot be read as {suffix[1:]} ({exc}). "
                                "Check the file format or convert it to CSV.") from exc
    raise ReportFormatError(f"{path}: unknown reports format {suffix!r}; use .csv, .parquet, .jsonl "
                            "or a folder of .txt files named by accession number or StudyInstanceUID.")


def _read_folder(path: Path) -> pl.DataFrame:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    rows = [(p.stem, p.read_text(errors="replace")) for p in files]
    return pl.DataFrame(rows, schema=["key", "report"], orient="row")


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
        df = raw.select(pl.col(key).cast(pl.Utf8).alias("key"), pl.col(text).cast(pl.Utf8).alias("report"))
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


_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE_PATTERNS = [
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",                          # 2023-01-15, 2023/1/5
    r"\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b",                # 15/01/2023, 01-15-23, 15.01.2023
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?[ -]{_MONTHS}[ -,]*\d{{2,4}}\b",  # 15 Jan 2023, 15-Jan-23
    rf"\b{_MONTHS} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b",          # January 15th, 2023
    rf"\b{_MONTHS} \d{{4}}\b",                                      # March 2023
]
_DATE = re.compile("|".join(_DATE_PATTERNS), re.IGNORECASE)
_PHONE = re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b")
_LABELLED_ID = re.compile(r"\b(MRN|medical record(?: number)?|accession(?: number| no\.?)?|acc(?:\.|#)|"
                          r"patient id|hospital (?:number|no\.?)|NHS(?: number)?)(\s*[:#]?\s*)[A-Za-z0-9-]+",
                          re.IGNORECASE)
_LONG_NUMBER = re.compile(r"\b\d{6,}\b")


def _literal(text: str, value: str, tag: str) -> str:
    if len(value) < 2:
        return text
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", tag, text, flags=re.IGNORECASE)


def deidentify_text(text: str, names: list[str] | tuple[str, ...] = (), ids: list[str] | tuple[str, ...] = ()) -> str:
    """Remove patient name parts, header IDs, dates, phone numbers and MRN-like numbers from `text`.

    names: PatientName values (DICOM "FAMILY^GIVEN^MIDDLE" or plain); ids: PatientID, accession number,
    other identifiers. Clinical numbers (EF 55%, 12 mm, 142 mL/m²) are kept.
    """
    out = text or ""
    for value in sorted({i.strip() for i in ids if i and i.strip()}, key=len, reverse=True):
        out = _literal(out, value, "[ID]")
    parts = {p for n in names if n for p in re.split(r"[\^\s,]+", n) if len(p) >= 2 and not p.isdigit()}
    for part in sorted(parts, key=len, reverse=True):
        out = _literal(out, part, "[NAME]")
    out = _LABELLED_ID.sub(lambda m: f"{m.group(1)}{m.group(2)}[ID]", out)
    out = _DATE.sub("[DATE]", out)
    out = _PHONE.sub("[PHONE]", out)
    return _LONG_NUMBER.sub("[ID]", out)

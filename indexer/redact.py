"""Redaction of report text before it is stored in the cache, embedded or written to the index.

    redact_report(text, names=["DOE^JOHN"], ids=["12345678", "ACC1"], birth_dates=["19610417"])

Three passes, each replacing what it finds with a TYPED placeholder ([NAME], [DATE], [AGE], [PHONE],
[EMAIL], [URL], [ID], [ADDRESS], [PLACE]):
1. the study's own identifiers from its DICOM header: name parts (family, given, middle; length >= 2;
   honorific prefix and suffix left out) -> [NAME], patient ID / accession / UIDs (also without leading
   zeros) -> [ID] and the birth date in the common written forms (19610417, 1961-04-17, 17/04/1961,
   04/17/1961, 17.04.1961, 17 Apr 1961, April 17, 1961, ...) -> [DATE];
2. generic patterns that catch identifiers of other people or forms the header does not give: a token
   with a digit after MRN / ID / accession / patient ID / hospital or NHS number, a date or year after
   DOB / date of birth / born, names after a title (Dr, Prof, Mr, Mrs, Ms: referring physicians,
   relatives), every written date (dates of the study included; 3rd March, Mar-2019, 3.12.19 too), phone
   numbers and runs of six or more digits;
3. free text (deid_philter.py): UCSF Philter's rules and name lists with a rule tagger, and our rules for
   institutions, towns, addresses, postcodes, phones, e-mails, URLs, ages over 89 and capitalised words no
   word list knows; clinical vocabulary and eponyms (Fabry, Fontan, Lake Louise criteria) are protected.
Clinical numbers (EF 35%, 12 mm, 142 mL/m², 120/80, aged 54, 3 months) are kept; so is a year alone
("in 2019"), which names no day. Measured by bench/deid.py (docs/privacy.md).
"""
from __future__ import annotations

import re
from typing import Iterable

from cmr_search.indexer.deid_philter import PHONE_PATTERN, redact_free_text

REDACTED = "[REDACTED]"        # generic placeholder (typed ones below); the philter pass keeps it
NAME, DATE, ID, PHONE = "[NAME]", "[DATE]", "[ID]", "[PHONE]"
HONORIFICS = 3            # a DICOM PN is family^given^middle^prefix^suffix: parts past the third are titles

_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")
_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_CAP_MONTHS = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
               r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEPT?|OCT|NOV|DEC)")
_DATE_PATTERNS = (
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",                          # 2023-01-15, 2023/1/5
    r"\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b",                # 15/01/2023, 01-15-23, 15.01.2023
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?(?: of)?[ -]{_MONTHS}[ ,-]*\d{{2,4}}\b",  # 15 Jan 2023, 15-Jan-23
    rf"\b{_MONTHS} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{2,4}}\b",        # January 15th, 2023; Mar 3 19
    rf"\b{_MONTHS}[ -]\d{{4}}\b",                                   # March 2023, Mar-2023
    r"\b(?:0?[1-9]|1[0-2])/(?:19|20)\d{2}\b",                      # 03/2019
    rf"(?-i:\b\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {_CAP_MONTHS}\b)",   # 3rd March, 3 of March (capitalised)
    rf"(?-i:\b{_CAP_MONTHS}\.? \d{{1,2}}(?:st|nd|rd|th)?\b)",       # March 3rd, Mar 3
)
_DATE = re.compile("|".join(_DATE_PATTERNS), re.IGNORECASE)
_BIRTH = re.compile(rf"\b(DOB|D\.O\.B\.?|date of birth|birth ?date|born(?: on| in)?)(\s*[:#-]?\s*)"
                    rf"(?:{'|'.join(_DATE_PATTERNS)}|\b\d{{8}}\b|\b(?:19|20)\d{{2}}\b)", re.IGNORECASE)
_LABELLED_ID = re.compile(r"\b(MRN|medical record(?: number| no\.?)?|accession(?: number| no\.?)?|acc(?:\.|#)|"
                          r"patient id|ID(?!\s+\d{5}(?:-\d{4})?\b)|(?:hospital|hosp\.?|unit|case|record|RIS|PACS) (?:number|no\.?|#)|"
                          r"NHS(?: number| no\.?)?|CHI(?: number| no\.?)?|SSN)"
                          r"(\s*(?:[:#]|no\.?|number)?\s*)"
                          r"[A-Za-z0-9-]*\d[A-Za-z0-9-]*(?: \d+\b)*",      # a token with a digit; 943 476 5919
                          re.IGNORECASE)
# a title, initials, then one or two capitalised words; case-sensitive, never MR / MS / MRS (clinical terms)
_TITLED_NAME = re.compile(r"\b(Dr|Prof|Mrs?|Ms|Miss|Mx|Doctor|Professor|DR|PROF|MISS)(\.?\s+)"
                          r"(?:[A-Z]\.\s*)*[A-ZÀ-ÖØ-Þ][\w'’-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w'’-]+)?")
_PHONE = re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b")
_LONG_NUMBER = re.compile(r"\b\d{6,}\b")
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")     # CJK, kana, hangul


def name_parts(names: Iterable[str]) -> set[str]:
    """Family, given and middle names of DICOM PN values ("FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX", with
    '='-separated alphabetic/ideographic/phonetic groups) or plain "Given Family" strings: each word of
    two or more characters, hyphenated names also whole and split."""
    parts: set[str] = set()
    for name in names:
        for group in (name or "").split("="):
            components = group.split("^")[:HONORIFICS] if "^" in group else [group]
            for word in re.split(r"[\s,]+", " ".join(components)):
                word = word.strip(".'")
                parts.update(p for p in {word, *word.split("-")} if len(p) >= 2 and not p.isdigit())
    return parts


def id_forms(ids: Iterable[str]) -> set[str]:
    """Identifier strings as they may appear in text: as given and without leading zeros."""
    forms: set[str] = set()
    for value in ids:
        value = (value or "").strip()
        if len(value) >= 2:
            forms.add(value)
            if value.lstrip("0") != value and len(value.lstrip("0")) >= 4:
                forms.add(value.lstrip("0"))
    return forms


def date_forms(date: str) -> set[str]:
    """A DICOM date (YYYYMMDD, or ISO YYYY-MM-DD) in the ways a report may write it; empty when invalid."""
    d = (date or "").strip().replace("-", "")
    if len(d) != 8 or not d.isdigit() or not 1 <= int(d[4:6]) <= 12 or not 1 <= int(d[6:]) <= 31:
        return set()
    y, m, dd = d[:4], d[4:6], d[6:]
    mon = _MONTH_NAMES[int(m) - 1]
    forms = {d, f"{y}-{m}-{dd}", f"{y}/{m}/{dd}", f"{y}.{m}.{dd}"}
    for day, month in ((dd, m), (dd.lstrip("0"), m.lstrip("0"))):
        for sep in "/.-":
            forms |= {f"{day}{sep}{month}{sep}{y}", f"{month}{sep}{day}{sep}{y}",
                      f"{day}{sep}{month}{sep}{y[2:]}", f"{month}{sep}{day}{sep}{y[2:]}"}
        forms |= {f"{day} {mon} {y}", f"{day} {mon[:3]} {y}", f"{day}-{mon[:3]}-{y}",
                  f"{mon} {day}, {y}", f"{mon} {day} {y}", f"{mon[:3]} {day}, {y}"}
    return forms


def _literal(text: str, value: str, placeholder: str = REDACTED) -> str:
    """Replace whole-word occurrences of `value` (any case); CJK values anywhere (no spaces between words)."""
    pattern = re.escape(value) if _CJK.search(value) else rf"(?<!\w){re.escape(value)}(?!\w)"
    return re.sub(pattern, placeholder, text, flags=re.IGNORECASE)


def redact_known(text: str, names: Iterable[str] = (), ids: Iterable[str] = (),
                 birth_dates: Iterable[str] = ()) -> str:
    """Pass 1: the study's own identifiers, longest first (so '1961-04-17' goes before '1961')."""
    values = {v: ID for v in id_forms(ids)} | {v: NAME for v in name_parts(names)}
    values |= {f: DATE for d in birth_dates for f in date_forms(d)}
    for value in sorted(values, key=len, reverse=True):
        text = _literal(text, value, values[value])
    return text


def redact_patterns(text: str) -> str:
    """Pass 2: labelled IDs, birth dates, titled names, all dates, phone numbers, long digit runs
    (the rules before the philter pass; bench/deid.py times them alone as the old redaction)."""
    text = _BIRTH.sub(lambda m: f"{m.group(1)}{m.group(2)}{DATE}", text)
    text = _LABELLED_ID.sub(lambda m: f"{m.group(1)}{m.group(2)}{ID}", text)
    text = _TITLED_NAME.sub(lambda m: f"{m.group(1)}{m.group(2)}{NAME}", text)
    text = _DATE.sub(DATE, text)
    text = _PHONE.sub(PHONE, PHONE_PATTERN.sub(PHONE, text))          # UK, US, international (ext. too)
    return _LONG_NUMBER.sub(ID, text)


def redact_report(text: str | None, names: Iterable[str] = (), ids: Iterable[str] = (),
                  birth_dates: Iterable[str] = ()) -> str:
    """Report text with the study's known identifiers, identifier-like patterns and free-text identifiers
    (philter pass) replaced by typed placeholders.

    names: PatientName values; ids: PatientID, accession number, StudyInstanceUID, other IDs;
    birth_dates: PatientBirthDate values (YYYYMMDD)."""
    return redact_free_text(redact_patterns(redact_known(text or "", names, ids, birth_dates)))

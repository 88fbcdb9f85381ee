"""Privacy scan: plant known identifiers in a SYNTHETIC archive's DICOM headers and reports, run the real
pipeline as a user would (`cmr prepare`, `cmr index`, `cmr search`, `cmr cohort export` without
--with-identifiers, as subprocesses with their own HOME, TMPDIR and working folder), then scan every byte
they wrote (the audit trail DATA/audit.jsonl among them) for every planted identifier in every plausible
encoding: zero hits outside the link table.

The link table (DATA/link.parquet and DATA/cache/link.parquet) is the one place raw study identifiers
(accession number, StudyInstanceUID, source path) may live (architecture.md §3); names, patient IDs and
birth dates may not live even there. The reports also name, in free text only, a relative (with a relation
word and no title), a hospital and a town: the redaction's free-text pass must remove them with no header
to go by. Positive controls keep the scan honest: a canary word planted in the reports must be found
(redaction keeps clinical text, and the scanner reads the index storage, Parquet and logs), the accession
must be found in the link table, and every identifier must be found in the input.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pydicom
import pytest

from cmr_search.phantom.generate import generate_archive

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = REPO / "model" / "checkpoints" / "cmr-tiny-phantom"
N_STUDIES = 6
QUERY = "zebracanary dilated left ventricle"
LINK_TABLES = ("link.parquet",)                 # file names where accession / UID / source path are allowed
ALLOWED_IN_LINK = ("accession", "study UID")
ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "latin-1")
FAMILY = ("ZZTESTNAME", "ZZMORTIMER", "ZZBJÖRKLUND", "ZZHALVORSEN", "ZZOKONKWO", "ZZPETROVNA")
GIVEN = ("QUIXOTE", "DULCINEA", "SØREN", "ROCINANTE", "SANSONIO", "ALDONZA")
# other people and places a report names (report text only: no header gives them to the redaction)
REL_GIVEN = ("Zelphina", "Quorvin", "Brindlemae", "Xandriel", "Orlavine", "Tamsquil")
REL_FAMILY = ("Quorrington", "Vexhollow", "Prendergrue", "Zanthorpe", "Mulvranny", "Oxtabury")
RELATION = ("wife", "husband", "daughter", "son", "sister", "brother")
HOSPITAL = ("St Quenburga Hospital", "Vellacourt General Hospital", "Royal Zandersby Infirmary",
            "Ormskeld Heart Centre", "Pelverton University Hospital", "Tressilwick Community Hospital")
HOSPITAL_WORDS = {"St", "Royal", "General", "Hospital", "Infirmary", "Heart", "Centre", "University", "Community"}
TOWN = ("Quillerbury", "Zennorwick", "Bramblethwaite", "Vortlesham", "Hexingdale", "Yarnsworth")


@dataclass
class Planted:
    """The identifiers planted in one SYNTHETIC study."""
    family: str
    given: str
    middle: str
    pid: str
    other_pid: str
    acc: str
    dob: dt.date
    ref_family: str
    phone: str
    uid: str
    canary: str
    rel_given: str
    rel_family: str
    relation: str
    hospital: str
    town: str

    def forms(self) -> dict[str, str]:
        """What to look for: each identifier in the written forms a leak could take."""
        d = self.dob
        return {"family name": self.family, "given name": self.given, "middle name": self.middle,
                "DICOM name": f"{self.family}^{self.given}", "name, given first": f"{self.given} {self.family}",
                "referring physician": self.ref_family, "patient ID": self.pid,
                "other patient ID": self.other_pid, "accession": self.acc, "phone": self.phone,
                "birth date DICOM": f"{d:%Y%m%d}", "birth date ISO": f"{d:%Y-%m-%d}",
                "birth date d/m/y": f"{d:%d/%m/%Y}", "birth date m/d/y": f"{d:%m/%d/%Y}",
                "birth date d.m.y": f"{d:%d.%m.%Y}", "study UID": self.uid,
                "relative given name": self.rel_given, "relative family name": self.rel_family,
                "relative": f"{self.rel_given} {self.rel_family}", "hospital": self.hospital,
                "hospital name": next(w for w in self.hospital.split() if w not in HOSPITAL_WORDS),
                "town": self.town}


def _planted(i: int, uid: str) -> Planted:
    return Planted(FAMILY[i], GIVEN[i], f"ZZMIDDLE{'ABCDEF'[i]}", f"98765{i:03d}", f"OPID7{i}4409",
                   f"ACC5550{i}", dt.date(1961, 4, 17) + dt.timedelta(days=397 * i), f"ZZREFDOC{'ABCDEF'[i]}",
                   f"555-01{i}-4567", uid, f"zebracanary{'abcdef'[i]}", REL_GIVEN[i], REL_FAMILY[i], RELATION[i],
                   HOSPITAL[i], TOWN[i])


# ---- planting ---------------------------------------------------------------------------------------
def _rewrite_dicom(folder: Path, p: Planted) -> int:
    n = 0
    for f in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet = "ISO_IR 100"                     # Latin-1: Ö and Ø in two names
        ds.PatientName = f"{p.family}^{p.given}^{p.middle}"
        ds.PatientID, ds.OtherPatientIDs, ds.AccessionNumber = p.pid, p.other_pid, p.acc
        ds.PatientBirthDate = f"{p.dob:%Y%m%d}"
        ds.ReferringPhysicianName = f"{p.ref_family}^HIPPOCRATES"
        ds.save_as(f)
        n += 1
    return n


def _report(i: int, p: Planted, original: str) -> str:
    """Identifiers in the header lines and inside the impression, in several forms; odd studies have no
    IMPRESSION header (the whole text is kept, so redaction alone must clean it). Besides the patient's
    own: a relative named with a relation word and no title, a hospital and a town, which no header gives."""
    g, f, d = p.given.title(), p.family.title(), p.dob
    others = (f"Discussed with {p.rel_given} {p.rel_family} ({p.relation}) on 3rd March. "
              f"Seen at {p.hospital}, {p.town}.")
    if i % 2 == 0:
        return (f"CLINICAL DETAILS: Patient {g} {f}, MRN {p.pid}, DOB {d:%Y-%m-%d}, accession {p.acc}; "
                f"referred by Dr {p.ref_family.title()}.\nIMPRESSION:\n{original} Canary {p.canary}. "
                f"Discussed with {g} {f} (DOB {d:%d/%m/%Y}, ID {p.pid}), born {d:%d.%m.%Y}; accession no. "
                f"{p.acc}; other ID {p.other_pid}; call {p.phone}. {others}")
    return (f"{p.family}^{p.given} {d:%Y%m%d} MRN: {p.pid} {p.acc}. {original} Canary {p.canary}. "
            f"Dr {p.ref_family.title()} informed; {p.middle.title()} {f} seen {d:%m/%d/%Y}, tel {p.phone}. "
            f"Her {p.relation} {p.rel_given} {p.rel_family} lives in {p.town}. {others}")


def plant(archive: Path) -> list[Planted]:
    """Rewrite the SYNTHETIC archive in place: study folders named by the planted accession, identifiers
    in every DICOM header, study.json and reports.csv (keyed by the planted accession)."""
    with open(archive / "reports.csv", newline="") as fh:
        originals = {r["accession_number"]: r["report"] for r in csv.DictReader(fh)}
    planted, rows = [], []
    for i, study_json in enumerate(sorted(archive.glob("*/study.json"))):
        rec = json.loads(study_json.read_text())
        p = _planted(i, rec["study_instance_uid"])
        assert _rewrite_dicom(study_json.parent, p) > 10
        rec["accession_number"] = rec["acquisition"]["accession"] = p.acc
        rec["acquisition"].update(patient_id=p.pid, patient_name=f"{p.family}^{p.given}",
                                  birth_date=f"{p.dob:%Y%m%d}")
        study_json.write_text(json.dumps(rec))
        rows.append({"accession_number": p.acc, "report": _report(i, p, originals[rec["folder"]])})
        (study_json.parent / "report.txt").write_text(rows[-1]["report"])
        study_json.parent.rename(archive / p.acc)
        planted.append(p)
    pl.DataFrame(rows).write_csv(archive / "reports.csv")
    return planted


# ---- scanning ---------------------------------------------------------------------------------------
def needles(planted: list[Planted], salt: bytes) -> dict[bytes, tuple[str, str]]:
    """Lower-cased byte patterns -> (what, encoding): every form, upper and lower case, each encoding."""
    out: dict[bytes, tuple[str, str]] = {}
    for p in planted:
        for what, text in p.forms().items():
            for variant in {text, text.upper(), text.lower()}:
                for enc in ENCODINGS:
                    try:
                        out[variant.encode(enc).lower()] = (f"{what} {text!r}", enc)
                    except UnicodeEncodeError:
                        pass
    for what, b in (("salt", salt), ("salt hex", salt.hex().encode()), ("salt base64", base64.b64encode(salt))):
        out[b.lower()] = (what, "bytes")
    return out


def _squeeze(raw: bytes, page: int = 4096) -> bytes:
    """Drop all-zero pages (the index preallocates files of 32 MiB), leaving 32 zero bytes in their place:
    a pattern never holds more zeros in a row than that (UTF-16 has one), so nothing is lost."""
    n = len(raw) // page * page
    keep = np.frombuffer(raw, np.uint8, n).reshape(-1, page).any(axis=1)
    gap = b"\x00" * 32
    return gap.join(raw[i * page:(i + 1) * page] if k else b"" for i, k in enumerate(keep)).replace(
        gap + gap, gap) + raw[n:] if n and not keep.all() else raw


def views(path: Path) -> list[bytes]:
    """A file's raw bytes (zero pages squeezed) and its decoded contents (Parquet cells as text, the members
    of zip / npz archives), lower-cased."""
    raw = path.read_bytes()
    out = [_squeeze(raw)]
    if raw[:4] == b"PAR1":
        df = pl.read_parquet(path)
        out.append("\n".join(str(v) for row in df.iter_rows() for v in row).encode())
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            out += [z.read(n) for n in z.namelist()]
    return [v.lower() for v in out]


def read_all(roots: list[Path]) -> dict[str, list[bytes]]:
    """Every file under roots -> its views."""
    return {str(f): views(f) for root in roots for f in sorted(root.rglob("*")) if f.is_file()}


def find(files: dict[str, list[bytes]], pats: dict[bytes, tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(file, what, encoding) for every pattern found in every file."""
    return [(f, *what) for f, blobs in files.items() for pat, what in pats.items()
            if any(pat in b for b in blobs)]


def _allowed(hit: tuple[str, str, str]) -> bool:
    return Path(hit[0]).name in LINK_TABLES and hit[1].startswith(ALLOWED_IN_LINK)


# ---- the pipeline, as a user runs it ---------------------------------------------------------------
class Runner:
    """`python -m cmr_search.ui.cli ...` in a clean environment; stdout/stderr kept in LOGS/<name>.out/.err."""

    def __init__(self, tmp: Path, salt: Path):
        self.logs, self.cwd = tmp / "logs", tmp / "work"
        for d in (self.logs, self.cwd, tmp / "home", tmp / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        drop = ("QDRANT_URL", "QDRANT_API_KEY", "CMR_DATA", "CMR_CHECKPOINT", "CMR_AUDIT")   # audit: the default, on
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CMR_SALT_FILE=str(salt),
                        HOME=str(tmp / "home"), TMPDIR=str(tmp / "tmp"), PYTHONPATH=str(REPO), COLUMNS="200")

    def __call__(self, name: str, *args) -> str:
        with open(self.logs / f"{name}.out", "w") as out, open(self.logs / f"{name}.err", "w") as err:
            rc = subprocess.run([sys.executable, "-m", "cmr_search.ui.cli", *map(str, args)], cwd=self.cwd, env=self.env,
                                stdout=out, stderr=err, timeout=900).returncode
        assert rc == 0, f"cmr {args[0]} exited {rc}: {(self.logs / f'{name}.err').read_text()[-2000:]}"
        return (self.logs / f"{name}.out").read_text()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Plant, run the pipeline, return what the scan needs."""
    if not (CHECKPOINT / "config.json").exists():
        pytest.skip(f"shipped checkpoint {CHECKPOINT} is absent")
    tmp = tmp_path_factory.mktemp("privacy")
    arch, data, exports = tmp / "archive", tmp / "data", tmp / "exports"
    generate_archive(arch, N_STUDIES, "tiny", seed=5)
    planted = plant(arch)
    salt_file = tmp / "secret" / "salt.key"
    cmr = Runner(tmp, salt_file)
    reports = arch / "reports.csv"
    cmr("prepare", "prepare", arch, "--reports", reports, "--out", data / "cache")
    cmr("index", "index", arch, "--reports", reports, "--data", data, "--checkpoint", CHECKPOINT)
    found = cmr("search-json", "search", QUERY, "--data", data, "--mode", "report", "--k", N_STUDIES, "--json")
    cmr("search-table", "search", QUERY, "--data", data, "--k", N_STUDIES)
    exports.mkdir()
    for suffix in ("csv", "parquet"):
        cmr(f"cohort-{suffix}", "cohort", "export", "--query", QUERY, "--k", N_STUDIES, "--data", data,
            "--out", exports / f"cohort.{suffix}")
    written = read_all([data, exports, cmr.logs, cmr.cwd, tmp / "home", tmp / "tmp"])
    return {"tmp": tmp, "arch": arch, "data": data, "planted": planted, "written": written,
            "pats": needles(planted, salt_file.read_bytes()), "search": found}


@pytest.mark.slow
def test_no_planted_identifier_in_any_byte_written(run):
    hits = [h for h in find(run["written"], run["pats"]) if not _allowed(h)]
    listing = "\n".join(f"  {f}: {what} ({enc})" for f, what, enc in sorted(set(hits)))
    assert not hits, f"{len(hits)} planted identifiers leaked into files the pipeline wrote:\n{listing}"


@pytest.mark.slow
def test_scan_finds_what_is_there(run):
    """Controls: every identifier is in the input; accession and UID are in the link table; the canary
    (clinical text kept by redaction) is in the cache, the index storage, the search output and the export."""
    input_hits = {what.split(" '")[0] for _, what, _ in find(read_all([run["arch"]]), run["pats"])}
    assert {"family name", "given name", "patient ID", "other patient ID", "accession", "birth date DICOM",
            "birth date ISO", "referring physician", "phone", "relative given name", "relative family name",
            "relative", "hospital", "hospital name", "town"} <= input_hits
    link_hits = {what.split(" '")[0] for f, what, _ in find(run["written"], run["pats"])
                 if _allowed((f, what, ""))}
    assert link_hits == {"accession", "study UID"}
    canaries = {p.canary.encode(): ("canary", "utf-8") for p in run["planted"]}
    where = {Path(f).relative_to(run["tmp"]).parts[:2] for f, _, _ in find(run["written"], canaries)}
    assert {("data", "cache"), ("data", "index"), ("logs", "search-json.out"), ("exports", "cohort.csv"),
            ("exports", "cohort.parquet")} <= where, where
    # the audit trail is read like every other file: its records hold the query (its canary word), one per
    # search, cohort and export the pipeline ran, so the zero-hit test above covers them
    audit_log = run["data"] / "audit.jsonl"
    assert str(audit_log) in run["written"]
    query = {QUERY.encode(): ("query", "utf-8")}
    assert str(audit_log) in {f for f, _, _ in find(run["written"], query)}
    events = [json.loads(line)["event"] for line in audit_log.read_text().splitlines()]
    assert events == ["search", "search", "cohort", "export", "cohort", "export"], events


@pytest.mark.slow
def test_index_payloads_hold_redacted_impressions(run):
    from cmr_search.search import Store
    with Store.open(run["data"]) as store:
        payloads = [h.payload for h in store.scroll()]
    assert len(payloads) == N_STUDIES
    relations = {p.relation for p in run["planted"]}
    for p in payloads:
        text = p["impression"]
        assert {"[NAME]", "[PLACE]", "[DATE]"} <= set(re.findall(r"\[[A-Z]+\]", text)) and "zebracanary" in text
        assert "Discussed with [NAME] (" in text and any(f"({r}) on [DATE]" in text for r in relations), text
        assert "Seen at [PLACE], [PLACE]." in text, text           # the relation word stays; who, where go
        assert re.fullmatch(r"[0-9a-f]{20}", p["study_key"]) and re.fullmatch(r"[0-9a-f]{20}", p["patient_key"])
    rows = [json.loads(line) for line in run["search"].splitlines()]
    assert len(rows) == N_STUDIES and all("[NAME]" in r["impression"] for r in rows)

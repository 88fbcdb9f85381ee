"""Reading, joining, impression extraction and de-identification of reports."""
import json

import polars as pl
import pytest

from cmr_search.indexer.errors import ReportFormatError
from cmr_search.indexer.records import StudyRecord
from cmr_search.indexer.reports import deidentify_text, extract_impression, join_reports, read_reports


def _study(uid, acc):
    return StudyRecord(uid, acc, "P1", "DOE^JOHN", "", "M", 50.0, "20230101", "", "", None, None, None, "/x")


def test_formats_and_key_detection(tmp_path):
    pl.DataFrame({"AccessionNumber": ["0012", "13"], "Report": ["a", "b"]}).write_csv(tmp_path / "r.csv")
    pl.DataFrame({"study_instance_uid": ["1.2"], "text": ["c"]}).write_parquet(tmp_path / "r.parquet")
    (tmp_path / "r.jsonl").write_text(json.dumps({"accession": "9", "report": "d"}) + "\n")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "1.2.3.txt").write_text("e")
    assert read_reports(tmp_path / "r.csv").to_dicts() == [{"key": "0012", "report": "a"},
                                                           {"key": "13", "report": "b"}]
    assert read_reports(tmp_path / "r.parquet")["key"].to_list() == ["1.2"]
    assert read_reports(tmp_path / "r.jsonl")["report"].to_list() == ["d"]
    assert read_reports(tmp_path / "txt").to_dicts() == [{"key": "1.2.3", "report": "e"}]


def test_missing_key_column_names_file_and_columns(tmp_path):
    pl.DataFrame({"patient": ["x"], "report": ["y"]}).write_csv(tmp_path / "bad.csv")
    with pytest.raises(ReportFormatError, match=r"bad.csv.*\['patient', 'report'\]"):
        read_reports(tmp_path / "bad.csv")


def test_join_by_accession_or_uid_and_unmatched():
    studies = [_study("1.2.1", "A1"), _study("1.2.2", "")]
    df = pl.DataFrame({"key": ["A1", "1.2.2", "nope", "A1"], "report": ["r1", "r2", "r3", "r4"]})
    joined, errors = join_reports(studies, df, "r.csv")
    assert joined == {"1.2.1": "r1", "1.2.2": "r2"}
    assert len(errors) == 2 and "row 2" in errors[0].reason and "nope" not in errors[0].reason


def test_extract_impression():
    text = "FINDINGS: dilated LV.\nIMPRESSION:\nDilated cardiomyopathy, EF 25%.\nSigned: Dr X"
    assert extract_impression(text) == "Dilated cardiomyopathy, EF 25%."
    assert extract_impression("conclusion: normal study") == "normal study"
    assert extract_impression("No sections here.") == "No sections here."


def test_deidentify_keeps_clinical_numbers():
    text = ("John Doe (MRN 12345678, acc A99881) scanned 2023-04-15 and on 15/04/2023 and March 3, 2022; "
            "call 555-123-4567. LVEF 55%, wall 12 mm, LVEDVi 142 mL/m², BP 120/80.")
    out = deidentify_text(text, ["DOE^JOHN"], ["A99881", "12345678"])
    for gone in ("John", "Doe", "12345678", "A99881", "2023", "555-123", "March"):
        assert gone not in out, out
    for kept in ("55%", "12 mm", "142 mL/m²", "120/80"):
        assert kept in out

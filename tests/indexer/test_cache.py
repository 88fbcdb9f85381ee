"""Cache files: atomic arrays, part files, merge with de-duplication, pruning."""
import numpy as np
import polars as pl

from cmr_search.indexer.cache import CacheWriter, fingerprint, load_arrays, write_arrays
from cmr_search.indexer.records import ErrorRecord


def _row(key, fp="f1"):
    return {"study_key": key, "source_fingerprint": fp, "array_path": f"arrays/{key}.npz", "views": ["cine_sax"]}


def _link(key):
    return {"study_key": key, "patient_key": "p", "study_instance_uid": "1.2", "accession_number": "",
            "source_path": "/x"}


def test_fingerprint_changes_with_files_and_extra():
    files = [("a", 1, 2), ("b", 3, 4)]
    assert fingerprint(files) == fingerprint(files[::-1])
    assert fingerprint(files) != fingerprint([("a", 1, 3), ("b", 3, 4)]) != fingerprint(files, "report")


def test_arrays_round_trip(tmp_path):
    (tmp_path / "arrays").mkdir()
    rel = write_arrays(tmp_path, "k1", {"cine_sax": np.ones((2, 3, 3), np.float32)})
    got = load_arrays(tmp_path, rel)
    assert got["cine_sax"].dtype == np.float16 and got["cine_sax"].shape == (2, 3, 3)
    assert not list((tmp_path / "arrays").glob(".*tmp"))


def test_parts_merge_dedupe_and_prune(tmp_path):
    w = CacheWriter(tmp_path)
    for k in ("a", "b", "c"):
        write_arrays(tmp_path, k, {"cine_sax": np.zeros((1, 2, 2))})
        w.add_study(_row(k), _link(k))
        w.flush()
    w.add_study(_row("a", "f2"), _link("a"))
    w.add_errors([ErrorRecord("/f", "", "scan", "bad")])
    w.flush()
    assert len(list((tmp_path / "parts").glob("studies-*.parquet"))) == 4
    assert CacheWriter(tmp_path).done() == {"a": "f2", "b": "f1", "c": "f1"}
    table = CacheWriter(tmp_path).finish(keep_keys={"a", "b"})
    assert sorted(table["study_key"]) == ["a", "b"] and table.filter(pl.col("study_key") == "a")["source_fingerprint"][0] == "f2"
    assert not (tmp_path / "arrays" / "c.npz").exists() and not list((tmp_path / "parts").iterdir())
    assert pl.read_parquet(tmp_path / "link.parquet").height == 2
    assert pl.read_parquet(tmp_path / "errors.parquet").columns == ["file", "study", "stage", "reason"]

"""Whole-archive acceptance checks of the generator: determinism, DICOM validity, geometry, timing."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cmr_search.ui.cli import main as cmr

N_FAST = 6


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    assert cmr(["synth", "--n", str(N_FAST), "--profile", "tiny", "--seed", "1", "--out", str(out)]) == 0
    return out


def _studies(root: Path):
    for sj in sorted(root.glob("*/study.json")):
        yield sj.parent, json.loads(sj.read_text())


def _series_datasets(study_dir: Path, rec: dict):
    for s in rec["series"]:
        files = sorted((study_dir / s["folder"]).glob("*.dcm"))
        assert len(files) == s["n_files"]
        yield s, [pydicom.dcmread(f) for f in files]


def test_archive_files_and_manifest(archive):
    import polars as pl
    studies = list(_studies(archive))
    assert len(studies) == N_FAST
    man = pl.read_parquet(archive / "manifest.parquet")
    assert man.height == N_FAST and {"label", "split", "accession_number"} <= set(man.columns)
    reports = pl.read_csv(archive / "reports.csv")
    assert reports.columns == ["accession_number", "report"]
    for study_dir, rec in studies:
        assert rec["synthetic"] is True
        assert (study_dir / "report.txt").read_text().strip() == rec["report"].strip()
        assert rec["split"] in ("train", "test")


def test_same_seed_gives_byte_identical_archive(archive, tmp_path):
    again = tmp_path / "b"
    assert cmr(["synth", "--n", str(N_FAST), "--profile", "tiny", "--seed", "1",
                "--out", str(again)]) == 0
    assert _tree_digest(archive) == _tree_digest(again)


def test_dicom_geometry_and_timing(archive):
    for study_dir, rec in _studies(archive):
        u = np.array(rec["heart_frame"]["u"])
        origin = np.array(rec["heart_frame"]["origin"])
        for s, dss in _series_datasets(study_dir, rec):
            for ds in dss:
                iop = np.array(ds.ImageOrientationPatient, float)
                r, c = iop[:3], iop[3:]
                assert abs(r @ r - 1) < 1e-4 and abs(c @ c - 1) < 1e-4 and abs(r @ c) < 1e-4
                normal = np.cross(r, c)
                if s["kind"] in ("cine_sax", "lge_sax"):
                    assert abs(abs(normal @ u) - 1) < 1e-4      # SAX normal ∥ long axis
                if s["kind"][-3:] in ("2ch", "3ch", "4ch"):
                    assert abs(normal @ u) < 1e-4               # LAX plane contains the axis...
                    ipp = np.array(ds.ImagePositionPatient, float)
                    assert abs((origin - ipp) @ normal) < 0.5   # ...and passes through the LV base
                has_ti = "InversionTime" in ds
                assert has_ti == (s["kind"].startswith("lge") or s["kind"] == "ti_scout"), s
            _check_trigger_times(s, dss)


def _check_trigger_times(s: dict, dss) -> None:
    if not s["kind"].startswith("cine"):
        return
    by_slice: dict[tuple, list] = {}
    for ds in dss:
        key = tuple(np.round(np.array(ds.ImagePositionPatient, float), 2))
        by_slice.setdefault(key, []).append(ds)
    for frames in by_slice.values():
        frames.sort(key=lambda d: int(d.InstanceNumber))
        times = [float(d.TriggerTime) for d in frames]
        assert all(b > a for a, b in zip(times, times[1:])), times
        assert len(frames) == int(frames[0].CardiacNumberOfImages)


def test_interrupted_and_grown_archive_equals_one_run(archive, tmp_path):
    """A run killed mid-way (one study without study.json, one with a torn one) and re-run with a larger
    --n gives the same files as one run; finished studies are read back, not made again."""
    grown = tmp_path / "grown"
    assert cmr(["synth", "--n", "4", "--profile", "tiny", "--seed", "1", "--out", str(grown)]) == 0
    folders = sorted(sj.parent for sj in grown.glob("*/study.json"))
    (folders[0] / "study.json").unlink()
    (folders[1] / "study.json").write_text('{"study_ind')
    kept = folders[2] / "study.json"
    before = kept.stat().st_mtime_ns
    assert cmr(["synth", "--n", str(N_FAST), "--profile", "tiny", "--seed", "1", "--out", str(grown)]) == 0
    assert kept.stat().st_mtime_ns == before
    assert _tree_digest(grown) == _tree_digest(archive)


def test_folder_of_another_run_is_refused(archive, tmp_path, capsys):
    other = tmp_path / "other"
    assert cmr(["synth", "--n", "2", "--profile", "tiny", "--seed", "1", "--wording", "train",
                "--out", str(other)]) == 0
    test_split = [json.loads(p.read_text())["split"] for p in other.glob("*/study.json")]
    assert test_split == ["train", "train"]
    for change in (["--seed", "1", "--wording", "test"], ["--seed", "2", "--wording", "train"]):
        assert cmr(["synth", "--n", "3", "--profile", "tiny", *change, "--out", str(other)]) == 2
        err = capsys.readouterr().err
        assert str(other) in err and "another synth run" in err and "--out" in err
    (other / "synth.json").unlink()           # an archive from before synth.json: its study.json tells
    assert cmr(["synth", "--n", "3", "--profile", "tiny", "--seed", "2", "--out", str(other)]) == 2
    assert len(list(other.glob("*/study.json"))) == 2


@pytest.mark.slow
def test_fifty_tiny_studies_twice_identical_and_readable(tmp_path):
    """One worker, then two: the same bytes (the work split does not change the archive)."""
    digests = []
    for name, workers in (("x", "1"), ("y", "2")):
        out = tmp_path / name
        assert cmr(["synth", "--n", "50", "--profile", "tiny", "--seed", "1", "--out", str(out),
                    "--workers", workers]) == 0
        digests.append(_tree_digest(out))
    assert digests[0] == digests[1]
    for f in (tmp_path / "x").rglob("*.dcm"):
        pydicom.dcmread(f)

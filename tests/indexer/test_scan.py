"""scan_archive: grouping, per-frame records, DICOMDIR, workers, real Sunnybrook headers."""
from __future__ import annotations

import os

from pydicom.fileset import FileSet

from tests.helpers.mr_files import SUNNYBROOK, enhanced_mr, mr_dataset, needs_sunnybrook, write_mr
from cmr_search.indexer.scan import scan_archive


def _small_archive(root):
    """2 studies: study A has a 3-slice x 2-phase cine series and a 1-image series; study B 1 image."""
    for z in range(3):
        for t in range(2):
            write_mr(root / "A" / "cine" / f"{z}_{t}.dcm", study="1.1", series="1.1.1",
                     ipp=(0, 0, 10.0 * z), trigger=40.0 * t, number=z * 2 + t + 1)
    write_mr(root / "A" / "lge" / "1.dcm", study="1.1", series="1.1.2", scanning="GR\\IR", ti=300)
    write_mr(root / "B" / "x.dcm", study="2.2", series="2.2.1")
    (root / "A" / "report.txt").write_text("sidecar, not DICOM")


def test_groups_studies_series_instances(tmp_path):
    _small_archive(tmp_path)
    studies, errors = scan_archive(tmp_path)
    assert errors == []
    assert [s.study_instance_uid for s in studies] == ["1.1", "2.2"]
    a = studies[0]
    assert a.source_dir == str(tmp_path / "A")
    assert [len(s.instances) for s in a.series] == [6, 1]
    assert a.age == 54 and a.sex == "F" and a.field_strength == 1.5 and a.accession_number == "A1"
    inst = a.series[0].instances[0]
    assert inst.ipp == (0.0, 0.0, 0.0) and inst.iop == (1, 0, 0, 0, 1, 0) and inst.frame == 0
    assert inst.size == os.path.getsize(inst.path) and inst.mtime_ns == os.stat(inst.path).st_mtime_ns
    assert a.series[1].scanning_sequence == "GR\\IR" and a.series[1].instances[0].inversion_time == 300


def test_workers_and_progress_give_same_result(tmp_path):
    _small_archive(tmp_path)
    for k in range(70):             # enough files for the process pool to be used
        write_mr(tmp_path / "C" / f"{k}.dcm", study="3.3", series="3.3.1", number=k + 1)
    calls = []
    one, _ = scan_archive(tmp_path)
    two, errors = scan_archive(tmp_path, workers=2, progress=lambda d, n: calls.append((d, n)))
    assert errors == [] and one == two
    assert calls[-1] == (78, 78)


def test_enhanced_mr_one_record_per_frame(tmp_path):
    enhanced_mr(tmp_path / "e.dcm", frames=3)
    studies, errors = scan_archive(tmp_path)
    assert errors == []
    insts = studies[0].series[0].instances
    assert [i.frame for i in insts] == [0, 1, 2]
    assert [i.ipp for i in insts] == [(0, 0, 0), (0, 0, 10), (0, 0, 20)]
    assert [i.trigger_time for i in insts] == [0, 40, 80]
    assert insts[0].iop == (1, 0, 0, 0, 1, 0) and insts[0].pixel_spacing == (1.5, 1.5)
    assert studies[0].series[0].cardiac_number_of_images == 3


def test_dicomdir_followed_not_listed(tmp_path):
    fs = FileSet()
    for k in range(3):
        ds = mr_dataset(number=k + 1, ipp=(0, 0, 10.0 * k))
        ds.StudyTime, ds.StudyID = "120000", "1"
        fs.add(ds)
    fs.write(tmp_path / "media")
    studies, errors = scan_archive(tmp_path)
    assert errors == []
    paths = [i.path for i in studies[0].series[0].instances]
    assert len(paths) == 3 and not any(p.endswith("DICOMDIR") for p in paths)


def test_dicomdir_reference_to_missing_file(tmp_path):
    fs = FileSet()
    ds = mr_dataset()
    ds.StudyTime, ds.StudyID = "120000", "1"
    fs.add(ds)
    fs.write(tmp_path)
    victim = next(p for p in tmp_path.rglob("IM*"))
    victim.unlink()
    studies, errors = scan_archive(tmp_path)
    assert studies == [] and len(errors) == 1 and "DICOMDIR" in errors[0].reason


def test_missing_archive_is_an_error_not_an_exception(tmp_path):
    studies, errors = scan_archive(tmp_path / "nope")
    assert studies == [] and "does not exist" in errors[0].reason


@needs_sunnybrook
def test_sunnybrook_headers():
    studies, errors = scan_archive(SUNNYBROOK, workers=2)
    assert errors == []
    assert len(studies) == 5
    by_id = {s.patient_id: s for s in studies}
    slices = {}
    for pid, s in by_id.items():
        assert len(s.series) == 1 and s.series[0].description == ""
        assert s.accession_number == "" and s.age is None and s.study_date == "20120000"
        insts = s.series[0].instances
        assert len(insts) % 20 == 0
        slices[pid] = len({round(i.ipp[2], 2) for i in insts})
        assert s.study_instance_uid.startswith("2.16.124")     # invalid UID kept as is
    assert sorted(slices.values()) == [10, 11, 11, 12, 13]
    assert slices["SCD0000101"] == 12 and slices["SCD0000201"] == 13

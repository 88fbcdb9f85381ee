"""Generate synthetic CMR studies and archives: the one place that runs the phantom's stages in order.

    latent + acquisition (params) -> 3-D heart (anatomy) -> images (render) -> measured values
    (measure) -> report (report) -> DICOM (dicom.writer) + labels/ (dicom.labelmaps: the exact label
    map of every image) + report.txt + study.json

Every study draws from its own random streams, seeded by (seed, study index, stream), so studies are
independent of one another, of the order they are made in and of the number of worker processes:
the same seed always gives byte-identical files.
"""
from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from cmr_search.phantom.cases import params
from cmr_search.phantom.cases.latent import to_dict
from cmr_search.phantom.dicom import writer as dicom_writer
from cmr_search.phantom.dicom.labelmaps import FOLDER as LABELS_FOLDER
from cmr_search.phantom.dicom.labelmaps import write_label_maps
from cmr_search.phantom.heart import anatomy, measure
from cmr_search.phantom.heart.geometry import HeartFrame
from cmr_search.phantom.imaging import render
from cmr_search.phantom.preview import write_contact_sheet
from cmr_search.phantom.profiles import Profile, get_profile
from cmr_search.phantom.randomness import study_rng
from cmr_search.phantom.reports import report

GENERATOR_VERSION = "0.1.0"
TEST_SPLIT_FRACTION = 0.3        # share of studies whose report uses the held-out wording
WORDINGS = ("mixed", "train", "test")   # report wording: drawn per study, or forced for the archive
HEART_ORIGIN_LPS = (20.0, -10.0, 0.0)   # mean LV base centre in the patient, mm

# Independent random streams per study (the third seed word).
STREAM_LATENT, STREAM_ACQ, STREAM_RENDER, STREAM_REPORT, STREAM_SPLIT, STREAM_POSE = range(1, 7)


def _heart_frame(acq, seed: int, index: int) -> HeartFrame:
    jitter = study_rng(seed, index, STREAM_POSE).normal(0.0, 4.0, size=3)
    return HeartFrame.from_angles(np.add(HEART_ORIGIN_LPS, jitter), acq.azimuth_deg,
                                  acq.elevation_deg, acq.inplane_rot_deg)


def _sax_depths(series, frame: HeartFrame) -> list[float]:
    """Long-axis depths of the cine SAX slices actually rendered (for the reader's measurements)."""
    cine = next(s for s in series if s.kind == "cine_sax")
    return [float(frame.to_local(p.center)[2]) for p in cine.planes]


def simulate_study(seed: int, index: int, profile: Profile, label: str | None = None,
                   wording: str = "mixed", labels: bool = True) -> dict:
    """Everything about one study in memory: latent, acquisition, heart, series, measured, report.
    `wording`: "mixed" draws the report wording split (TEST_SPLIT_FRACTION held-out); "train" / "test"
    force it. The draw comes from its own stream, so forcing it changes the report and nothing else.
    `labels`: the series carry their label maps (RenderedSeries.tissue / lge); images are the same."""
    latent = params.sample_latent(study_rng(seed, index, STREAM_LATENT), index, label)
    acq = params.sample_acquisition(study_rng(seed, index, STREAM_ACQ), profile, index, seed,
                                    age=latent.age)
    frame = _heart_frame(acq, seed, index)
    heart = anatomy.Heart(latent, frame)
    series = render.render_study(latent, acq, profile, heart, frame,
                                 study_rng(seed, index, STREAM_RENDER), labels=labels)
    measured = measure.measure_study(heart, _sax_depths(series, frame))
    test = study_rng(seed, index, STREAM_SPLIT).random() < TEST_SPLIT_FRACTION
    split = ("test" if test else "train") if wording == "mixed" else wording
    rep = report.make_report(latent, measured, split, study_rng(seed, index, STREAM_REPORT))
    return {"latent": latent, "acq": acq, "frame": frame, "heart": heart, "series": series,
            "measured": measured, "split": split, "report": rep}


def _record(seed: int, index: int, profile: Profile, sim: dict, series_records: list[dict]) -> dict:
    latent, acq, rep = sim["latent"], sim["acq"], sim["report"]
    return {
        "study_index": index,
        "study_instance_uid": dicom_writer.study_instance_uid(seed, index),
        "accession_number": acq.accession,
        "label": latent.label,
        "subtype": latent.subtype,
        "split": sim["split"],
        "label_noise": bool(rep["label_noise"]),
        "noise_kind": rep["noise_kind"],
        "reported_dx": rep["reported_dx"],
        "report": rep["impression"],
        "findings": rep["findings"],
        "measured": {k: float(v) for k, v in sim["measured"].items()},
        "latent": to_dict(latent),
        "acquisition": to_dict(acq),
        "series": series_records,
        "heart_frame": {k: [float(x) for x in getattr(sim["frame"], k)]
                        for k in ("origin", "e_lat", "e_ant", "u")},
        "synthetic": True,
        "generator": {"name": "cmr-search phantom", "version": GENERATOR_VERSION,
                      "seed": seed, "profile": profile.name},
    }


def generate_study(seed: int, index: int, profile: Profile | str, out_root: str | Path,
                   preview: bool = False, label: str | None = None, wording: str = "mixed",
                   labels: bool = True) -> dict:
    """Write one study folder `<out_root>/<accession>/` and return its study.json record.
    `label` forces the class (documentation, tests); None draws it from the archive prior.
    `wording` forces the report wording split ("train" / "test"; "mixed" draws it).
    `labels` also writes the exact label map of every DICOM image under `<accession>/labels/`
    (dicom.labelmaps; study.json "label_maps" names the folder, None without them)."""
    if wording not in WORDINGS:
        raise ValueError(f"wording must be one of {WORDINGS}, not {wording!r}")
    profile = get_profile(profile) if isinstance(profile, str) else profile
    done = existing_record(seed, index, profile, out_root, label, wording)
    sheet = Path(out_root) / "preview" / f"{done['folder']}.png" if done else None
    has_maps = done is not None and (not labels or done.get("label_maps") is not None)
    if has_maps and (not preview or sheet.is_file()):   # an earlier run with the same arguments
        return done                                     # finished it: keep it
    sim = simulate_study(seed, index, profile, label, wording, labels)
    study_dir = Path(out_root) / sim["acq"].accession
    series_records = dicom_writer.write_study(study_dir, sim["latent"], sim["acq"], sim["series"],
                                              seed, compress=profile.compress)
    record = _record(seed, index, profile, sim, series_records)
    record["folder"] = study_dir.name
    record["label_maps"] = None
    if labels:
        write_label_maps(study_dir, sim["series"], series_records, seed, index)
        record["label_maps"] = LABELS_FOLDER
    (study_dir / "report.txt").write_text(record["report"] + "\n")
    (study_dir / "study.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    if preview:
        write_contact_sheet(Path(out_root) / "preview" / f"{study_dir.name}.png", sim["series"],
                            title=f"{record['label']} ({record['subtype']}) synthetic")
    return record


def claim_folder(out: str | Path, spec: dict) -> None:
    """Mark `out` as the archive of one synth run (OUT/synth.json: seed, profile, label, wording) so a
    later run resumes it or grows it, and refuse a folder that holds another run's archive."""
    out = Path(out)
    mark = out / "synth.json"
    try:
        found = json.loads(mark.read_text())
    except (OSError, ValueError):
        found = _legacy_spec(out)
    if found is not None and any(spec.get(k) != v for k, v in found.items()):
        raise ValueError(f"{out} holds the synthetic archive of another synth run ({found}), not {spec}; "
                         f"use a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    mark.write_text(json.dumps(spec, sort_keys=True) + "\n")


def _legacy_spec(out: Path) -> dict | None:
    """The seed and profile of an archive written before synth.json existed (from one study.json)."""
    first = next(out.glob("*/study.json"), None) if out.is_dir() else None
    if first is None:
        return None
    try:
        gen = json.loads(first.read_text())["generator"]
    except (OSError, ValueError, KeyError):
        return None
    return None if gen.get("seed") is None else {"seed": gen["seed"], "profile": gen["profile"]}


def existing_record(seed: int, index: int, profile: Profile, out_root: str | Path,
                    label: str | None = None, wording: str = "mixed") -> dict | None:
    """The study.json record of study `index` if an earlier run with the same seed, profile, label and
    wording finished it under `out_root` (study.json is written last, so a study killed mid-write has
    none and is made again); None otherwise. A folder holding another run's study is an error: two
    archives must not be mixed in one folder."""
    latent = params.sample_latent(study_rng(seed, index, STREAM_LATENT), index, label)   # cheap draws
    acq = params.sample_acquisition(study_rng(seed, index, STREAM_ACQ), profile, index, seed, age=latent.age)
    path = Path(out_root) / acq.accession / "study.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):        # absent, or torn by a kill: (re)generate
        return None
    gen = record.get("generator", {})
    same = (gen.get("seed"), gen.get("profile"), record.get("study_index")) == (seed, profile.name, index)
    same = same and (label is None or record.get("label") == label)
    same = same and (wording == "mixed" or record.get("split") == wording)
    if not same:
        raise ValueError(f"{path}: written by another synth run (seed {gen.get('seed')}, profile "
                         f"{gen.get('profile')}, split {record.get('split')}); use a new --out folder")
    return record


def _generate_one(job: tuple) -> dict:
    return generate_study(*job)


def iter_archive(out: str | Path, n: int, profile: Profile | str = "tiny", seed: int = 0,
                 workers: int = 1, preview: bool = False,
                 label: str | None = None, wording: str = "mixed",
                 labels: bool = True) -> Iterator[dict]:
    """Generate studies 0..n-1 under `out`, yielding each record in index order as it is done.
    Studies an earlier run with the same arguments finished are read back, not made again, so a killed
    run resumes and `--n` can grow an archive (studies depend on (seed, index) only); with `labels`, a
    study made without label maps is made again (the same files, plus labels/)."""
    claim_folder(out, {"seed": seed, "profile": profile if isinstance(profile, str) else profile.name,
                       "label": label, "wording": wording})
    jobs = [(seed, i, profile, str(out), preview, label, wording, labels) for i in range(n)]
    if workers <= 1:
        yield from map(_generate_one, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_generate_one, jobs, chunksize=1)


def write_reports_csv(records: list[dict], out: str | Path) -> Path:
    """reports.csv at the archive root: accession_number, report (architecture.md §8)."""
    path = Path(out) / "reports.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["accession_number", "report"])
        for r in sorted(records, key=lambda r: r["study_index"]):
            w.writerow([r["accession_number"], r["report"]])
    return path


MANIFEST_COLUMNS = ("study_index", "folder", "study_instance_uid", "accession_number", "label",
                    "subtype", "split", "label_noise", "noise_kind", "reported_dx")


def manifest_rows(records: list[dict]) -> list[dict]:
    """One flat row per study for manifest.parquet: ids, truth, split, findings and measured values."""
    rows = []
    for r in sorted(records, key=lambda r: r["study_index"]):
        row = {k: r[k] for k in MANIFEST_COLUMNS}
        row["findings"] = json.dumps(r["findings"], sort_keys=True)
        row.update({f"measured_{k}": v for k, v in sorted(r["measured"].items())})
        rows.append(row)
    return rows


def generate_archive(out: str | Path, n: int, profile: Profile | str = "tiny", seed: int = 0,
                     workers: int = 1, preview: bool = False,
                     on_study: Callable[[dict], None] | None = None,
                     label: str | None = None, wording: str = "mixed",
                     labels: bool = True) -> list[dict]:
    """Generate an archive of n studies; writes reports.csv and returns the records. `labels`: the
    label map of every image beside the DICOM (generate_study). (manifest.parquet is written by the
    `cmr synth` command, which may use polars.)"""
    records = []
    for rec in iter_archive(out, n, profile, seed, workers, preview, label, wording, labels):
        records.append(rec)
        if on_study is not None:
            on_study(rec)
    write_reports_csv(records, out)
    return records


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))

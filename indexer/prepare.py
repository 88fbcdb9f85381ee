"""`cmr prepare`: archive + reports -> study cache (cache.py), in parallel, incremental and crash-safe.

    result = prepare("archive/", "reports.csv", "cmr-data/cache", workers=2)

Per study (one task per worker process): type the series, assemble the views, redact the report's
impression (redact.py), write the arrays, segment and measure the cine SAX stack (measurements.py: the
segmenter, `segmenter=` or the default checkpoint, runs in every worker with one torch thread; without a
checkpoint the cache is built without measurements, said once); the main process appends rows and errors
as part files. Studies whose source files and report are unchanged since the last run are skipped, except
that a cached study without measurements by this segmenter (none yet, or another `seg_fingerprint`) is
measured and its row updated: its arrays and everything else in the row are kept, but its cine SAX stack
is decoded again (the cache holds only a crop of the mid slice). One bad study never stops the run: it
becomes a row of errors.parquet. An ACDC-layout folder (patientNNN/Info.cfg) is imported from NIfTI.

An archive without any DICOM study (empty, or nothing in it a DICOM image) raises NoStudiesError naming
what the folder holds, before anything in the cache changes; a re-run that finds only cached studies is
no error. With reports, the counts of studies with and without one are saved for the caller
(reports.ReportSummary, printed by `cmr prepare` and `cmr index`), the keys that matched no study go to
OUT/unmatched_report_keys.txt (0600), and a reports file none of whose rows matches a study raises
ReportsMatchNothingError before anything is (re)built: studies cached with their reports keep them.
"""
from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import polars as pl
from tqdm import tqdm

from cmr_search.indexer.assemble import assemble_with_cine, read_cine_sax
from cmr_search.indexer.cache import CacheWriter, fingerprint, write_arrays, write_masks
from cmr_search.indexer.errors import CorruptPixelsError
from cmr_search.indexer.identifiers import load_or_create_salt, patient_key, study_key
from cmr_search.indexer.measurements import (body_size, init_worker, load_segmenter, measure_study,
                                             unmeasured, worker_segmenter)
from cmr_search.indexer.nifti import is_acdc, prepare_acdc
from cmr_search.indexer.records import ErrorRecord, StudyRecord
from cmr_search.indexer.redact import redact_report
from cmr_search.indexer.reports import ReportSummary, extract_impression, match_reports
from cmr_search.indexer.scan import NoStudiesError, has_candidates, no_studies_message, scan_archive
from cmr_search.indexer.series_typing import type_study
from cmr_search.indexer.study_rows import PrepareResult, find_truth, month, study_row
from cmr_search.model.report_context import finding_keys


@dataclass
class _Task:
    study: StudyRecord
    key: str
    pkey: str
    report: str
    fp: str
    out: str
    cached: dict | None = None     # the study's cached row: only its measurements are (re)done


def _link(task: _Task) -> dict:
    s = task.study
    return {"study_key": task.key, "patient_key": task.pkey, "study_instance_uid": s.study_instance_uid,
            "accession_number": s.accession_number, "source_path": s.source_dir}


def _measure(task: _Task, cine) -> tuple[dict, list[ErrorRecord]]:
    """The measurement fields of a study's row (none without a segmenter) and any error. A failure is
    recorded in seg_flags and errors.parquet; it never fails the study."""
    seg, s = worker_segmenter(), task.study
    if seg is None:
        return {}, []
    if cine is None:
        return unmeasured(seg, "no cine SAX stack"), []
    try:
        height, weight = body_size(s.height_m, s.weight_kg)
        fields, masks, frames = measure_study(seg, cine, height_cm=height, weight_kg=weight)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        return (unmeasured(seg, f"measurement failed: {type(exc).__name__}"),
                [ErrorRecord(s.source_dir, task.key, "measure", f"{type(exc).__name__}: {exc}")])
    fields["mask_path"] = write_masks(task.out, task.key, masks, frames)
    return fields, []


def _remeasure(task: _Task) -> tuple[dict | None, dict | None, list[ErrorRecord]]:
    """Worker: a cached study -> its row with measurements (arrays kept), link, errors. Never raises."""
    s, errors, why = task.study, [], None
    try:
        cine = read_cine_sax(s, type_study(s))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:                 # decoder panics included, as in _process
        cine, why = None, f"cine SAX unreadable: {type(exc).__name__}"
        errors = [ErrorRecord(s.source_dir, task.key, "measure", f"{type(exc).__name__}: {exc}")]
    fields, more = _measure(task, cine)
    if why and fields:
        fields["seg_flags"] = [why]
    return {**task.cached, **fields}, _link(task), errors + more


def _process(task: _Task, archive: str) -> tuple[dict | None, dict | None, list[ErrorRecord]]:
    """Worker: one study -> (row, link, errors). Never raises."""
    if task.cached is not None:
        return _remeasure(task)
    s = task.study
    try:
        views, qa, dropped, cine = _assemble(s)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # one bad study must not stop the run (decoder panics included)
        return None, None, [ErrorRecord(s.source_dir, task.key, "assemble", f"{type(exc).__name__}: {exc}")]
    bad = [ErrorRecord(e.path, task.key, "assemble", f"file left out of the study: {e}") for e in dropped]
    qa.warnings += [f"{len(dropped)} corrupt files left out"] if dropped else []
    if not task.report:
        qa.warnings.append("no report")
    impression = redact_report(extract_impression(task.report), names=[s.patient_name],
                               ids=[s.patient_id, s.accession_number, s.study_instance_uid],
                               birth_dates=[s.birth_date])
    if month(s.study_date) is None:
        qa.warnings.append("study date missing or invalid")
    meta = {"age": s.age, "sex": s.sex, "study_date": month(s.study_date), "manufacturer": s.manufacturer,
            "model_name": s.model_name, "field_strength": s.field_strength}
    rel = write_arrays(task.out, task.key, views)
    fields, more = _measure(task, cine)
    del cine
    row = study_row(task.key, task.pkey, meta, views, qa, impression, find_truth(s.source_dir, archive),
                    task.fp, rel)
    findings = finding_keys(task.report or "")     # 'LGE:affirmed', ...: concept keys only, never report words
    return {**row, **fields, "report_findings": findings}, _link(task), bad + more


MAX_CORRUPT_FILES = 16     # more corrupt files than this in one study: the study fails


def _assemble(s: StudyRecord):
    """Type and assemble one study; a file whose pixels cannot be decoded is left out (its instances
    removed, the study typed and assembled again) -> (views, qa, [CorruptPixelsError of each file],
    the cine SAX stack or None)."""
    dropped: list[CorruptPixelsError] = []
    while True:
        try:
            views, qa, cine = assemble_with_cine(s, type_study(s))
            return views, qa, dropped, cine
        except CorruptPixelsError as e:
            if len(dropped) >= MAX_CORRUPT_FILES:
                raise
            dropped.append(e)
            for se in s.series:
                se.instances = [i for i in se.instances if i.path != e.path]
            s.series = [se for se in s.series if se.instances]


def _results(tasks: list[_Task], archive: str, workers: int, pool):
    """Yield _process results, in the process pool when there is one (a bounded number in flight)."""
    if pool is None:
        for t in tasks:
            yield _process(t, archive)
        return
    pending, todo = set(), iter(tasks)
    for t in todo:
        pending.add(pool.submit(_process, t, archive))
        if len(pending) >= 4 * workers:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)
    for f in pending:
        yield f.result()


def _files(s: StudyRecord) -> list[tuple[str, int, int]]:
    return sorted({(i.path, i.size, i.mtime_ns) for se in s.series for i in se.instances})


def _keyed(errors: list[ErrorRecord], salt: bytes) -> list[ErrorRecord]:
    """Errors name studies by key, never by raw StudyInstanceUID."""
    return [ErrorRecord(e.path, study_key(e.study, salt) if e.study else "", e.stage, e.reason) for e in errors]


def prepare(archive, reports=None, out="cmr-data/cache", *, workers: int = 1, salt_file=None,
            progress: bool = True, select=None, segmenter=None) -> PrepareResult:
    """Cache every study of `archive` (DICOM tree or ACDC NIfTI folder) into `out`; see module docstring.
    select: optional predicate on the study key; studies it rejects are not (re)built, and cached ones are
    kept as they are (`cmr index --shard i/N` caches only its own share of the archive). segmenter: a
    model.segmentation.Segmenter or its folder; None: the default checkpoint (measurements skipped, with
    a MeasurementsSkipped warning, when there is none); False: no measurements."""
    t0 = time.monotonic()
    salt = load_or_create_salt(salt_file, not_inside=(out,))     # never inside the cache it keys
    check_archive(archive)
    ReportSummary.clear(out)                    # the summary is this run's or none
    writer = CacheWriter(out)
    seg = load_segmenter(segmenter)
    if is_acdc(archive):
        return prepare_acdc(archive, writer, salt, t0, progress, seg)
    init_worker(seg, threads=None)              # the in-process path (workers=1) keeps torch's threads
    try:
        with ProcessPoolExecutor(workers, initializer=init_worker, initargs=(seg,)) if workers > 1 \
                else contextlib.nullcontext() as pool:                                  # the workers fork
            return _scan_and_run(archive, reports, out, writer, salt, workers, pool, progress, select, t0)
    finally:
        init_worker(None)


def check_archive(archive) -> None:
    """NoStudiesError, before any work, when `archive` is no folder or holds no file that may be DICOM
    (empty, or only .txt, .png, ... files); an ACDC NIfTI folder passes."""
    if not os.path.isdir(archive):
        raise NoStudiesError(f"archive folder {archive} does not exist or is not a folder; check the path.")
    if not is_acdc(archive) and not has_candidates(archive):
        raise NoStudiesError(no_studies_message(archive))


def _no_studies(archive, scan_errors, cached: dict, out) -> NoStudiesError:
    kept = f" The cache at {out} keeps its {len(cached)} studies unchanged." if cached else ""
    return NoStudiesError(no_studies_message(archive, scan_errors) + kept)


def _scan_and_run(archive, reports, out, writer, salt, workers, pool, progress, select, t0) -> PrepareResult:
    """prepare() after its set-up: one process pool (or None) serves the header scan and the assembly."""
    studies, scan_errors = scan_archive(str(archive), workers=workers, pool=pool)
    cached = writer.cached_rows()
    if not studies:                              # nothing changes: the cache keeps what it holds
        raise _no_studies(archive, scan_errors, cached, out)
    report_map, report_errors = {}, []
    if reports is not None:
        report_map, report_errors, _ = match_reports(studies, reports, out)
    writer.add_errors(_keyed(scan_errors, salt) + report_errors)
    tasks, keys = [], set()
    seg = worker_segmenter()
    for s in studies:
        key, report = study_key(s.study_instance_uid, salt), report_map.get(s.study_instance_uid, "")
        keys.add(key)
        fp = fingerprint(_files(s), report)
        if select is not None and not select(key):
            continue
        row = cached.get(key)
        if row is None or row["source_fingerprint"] != fp:
            tasks.append(_Task(s, key, patient_key(s.patient_id, salt), report, fp, str(out)))
        elif seg is not None and row.get("seg_fingerprint") != seg.fingerprint:    # measure it only
            tasks.append(_Task(s, key, row["patient_key"], report, fp, str(out), cached=row))
    return _run(tasks, str(archive), writer, keys, workers, pool, progress, t0)


def _run(tasks, archive, writer, keys, workers, pool, progress, t0) -> PrepareResult:
    failed = measured = 0
    bar = tqdm(total=len(tasks), unit="study", disable=not progress, desc="prepare")
    for row, link, errors in _results(tasks, archive, workers, pool):
        if row is None:
            failed += 1
            keys.discard(errors[0].study) if errors else None
        else:
            writer.add_study(row, link)
            measured += row.get("seg_fingerprint") is not None
        writer.add_errors(errors)
        bar.update(1)
    bar.close()
    table = writer.finish(keep_keys=keys)
    n_err = pl.read_parquet(writer.folder.errors_table).height
    built = sum(t.cached is None for t in tasks) - failed
    return PrepareResult(writer.out, table, built, len(keys) - built, failed, n_err, time.monotonic() - t0,
                         measured)

"""`cmr prepare`: archive + reports -> study cache (cache.py), in parallel, incremental and crash-safe.

    result = prepare("archive/", "reports.csv", "cmr-data/cache", workers=2)

Per study (one task per worker process): type the series, assemble the views, redact the report's
impression (redact.py), write the arrays; the main process appends rows and errors as part files. Studies
whose source files and report are unchanged since the last run are skipped. One bad study never stops
the run: it becomes a row of errors.parquet. An ACDC-layout folder (patientNNN/Info.cfg) is imported from NIfTI.
"""
from __future__ import annotations

import contextlib
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import polars as pl
from tqdm import tqdm

from cmr_search.indexer.assemble import assemble_study
from cmr_search.indexer.cache import CacheWriter, fingerprint, write_arrays
from cmr_search.indexer.errors import CorruptPixelsError
from cmr_search.indexer.identifiers import load_or_create_salt, patient_key, study_key
from cmr_search.indexer.nifti import is_acdc, prepare_acdc
from cmr_search.indexer.records import ErrorRecord, StudyRecord
from cmr_search.indexer.redact import redact_report
from cmr_search.indexer.reports import extract_impression, join_reports, read_reports
from cmr_search.indexer.scan import scan_archive
from cmr_search.indexer.series_typing import type_study
from cmr_search.indexer.study_rows import PrepareResult, find_truth, month, study_row


@dataclass
class _Task:
    study: StudyRecord
    key: str
    pkey: str
    report: str
    fp: str
    out: str


def _process(task: _Task, archive: str) -> tuple[dict | None, dict | None, list[ErrorRecord]]:
    """Worker: one study -> (row, link, errors). Never raises."""
    s = task.study
    try:
        views, qa, dropped = _assemble(s)
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
    row = study_row(task.key, task.pkey, meta, views, qa, impression, find_truth(s.source_dir, archive),
                    task.fp, rel)
    link = {"study_key": task.key, "patient_key": task.pkey, "study_instance_uid": s.study_instance_uid,
            "accession_number": s.accession_number, "source_path": s.source_dir}
    return row, link, bad


MAX_CORRUPT_FILES = 16     # more corrupt files than this in one study: the study fails


def _assemble(s: StudyRecord):
    """Type and assemble one study; a file whose pixels cannot be decoded is left out (its instances
    removed, the study typed and assembled again) -> (views, qa, [CorruptPixelsError of each file])."""
    dropped: list[CorruptPixelsError] = []
    while True:
        try:
            views, qa = assemble_study(s, type_study(s))
            return views, qa, dropped
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
            progress: bool = True, select=None) -> PrepareResult:
    """Cache every study of `archive` (DICOM tree or ACDC NIfTI folder) into `out`; see module docstring.
    select: optional predicate on the study key; studies it rejects are not (re)built, and cached ones are
    kept as they are (`cmr index --shard i/N` caches only its own share of the archive)."""
    t0 = time.monotonic()
    salt = load_or_create_salt(salt_file, not_inside=(out,))     # never inside the cache it keys
    writer = CacheWriter(out)
    if is_acdc(archive):
        return prepare_acdc(archive, writer, salt, t0, progress)
    with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:   # the workers fork
        return _scan_and_run(archive, reports, out, writer, salt, workers, pool, progress, select, t0)


def _scan_and_run(archive, reports, out, writer, salt, workers, pool, progress, select, t0) -> PrepareResult:
    """prepare() after its set-up: one process pool (or None) serves the header scan and the assembly."""
    studies, scan_errors = scan_archive(str(archive), workers=workers, pool=pool)
    report_map, report_errors = {}, []
    if reports is not None:
        report_map, report_errors = join_reports(studies, read_reports(reports), str(reports))
    writer.add_errors(_keyed(scan_errors, salt) + report_errors)
    done, tasks, keys = writer.done(), [], set()
    for s in studies:
        key, report = study_key(s.study_instance_uid, salt), report_map.get(s.study_instance_uid, "")
        keys.add(key)
        fp = fingerprint(_files(s), report)
        if done.get(key) != fp and (select is None or select(key)):
            tasks.append(_Task(s, key, patient_key(s.patient_id, salt), report, fp, str(out)))
    return _run(tasks, str(archive), writer, keys, workers, pool, progress, t0)


def _run(tasks, archive, writer, keys, workers, pool, progress, t0) -> PrepareResult:
    failed = 0
    bar = tqdm(total=len(tasks), unit="study", disable=not progress, desc="prepare")
    for row, link, errors in _results(tasks, archive, workers, pool):
        if row is None:
            failed += 1
            keys.discard(errors[0].study) if errors else None
        else:
            writer.add_study(row, link)
        writer.add_errors(errors)
        bar.update(1)
    bar.close()
    table = writer.finish(keep_keys=keys)
    n_err = pl.read_parquet(writer.folder.errors_table).height
    return PrepareResult(writer.out, table, len(tasks) - failed, len(keys) - (len(tasks) - failed),
                         failed, n_err, time.monotonic() - t0)

"""`cmr index`: embed an archive's studies and reports into the search index; `cmr index push`.

    cmr index ARCHIVE --reports FILE [--data DIR] [--checkpoint CKPT] [--shard i/N] [--batch 32] [--url URL]
    cmr index push --url URL [--api-key KEY] [--data DIR]       # copy the embedded index to a server
    cmr index --dicomweb https://pacs/dicom-web [--since 2024-01-01] [--until ...] [--max-rps 10]  # a PACS
    (a server URL needs --api-key / $QDRANT_API_KEY, or --insecure; --tls-ca FILE for a private CA)

Prepares DATA/cache from the archive when needed (incremental), embeds the studies not yet indexed with
this model (all views -> study, cine -> cine, LGE -> lge, impression -> report) and upserts them into
DATA/index (embedded) or the server at --url / $QDRANT_URL. Re-running adds nothing; a killed run resumes.
N workers split an archive with --shard 0/N ... N-1/N, each with its own --data and the same --url.
A collection created by this run (or by push) takes --shards/--replicas (server) and --quantize (int8);
an existing one keeps its layout (docs/scale.md, docs/sizing.md).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from cmr_search.indexer.dicomweb import PREFIX, DicomwebError, StudyQuery, dicomweb_url, pull_studies
from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.identifiers import load_or_create_salt
from cmr_search.indexer.reports import ReportSummary
from cmr_search.indexer.shards import in_shard, parse_shard
from cmr_search.model.errors import ModelError
from cmr_search.search.collection import CollectionOptions
from cmr_search.search.errors import SearchError
from cmr_search.search.settings import Settings
from cmr_search.ui.search_cmd import add_server_security_args, add_untrained_arg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr index", description="Embed an archive into the search index.",
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", nargs="?", help="archive folder, or dicomweb+https://HOST/PATH (a PACS, as "
                   "--dicomweb); omit to index DATA/cache as it is")
    p.add_argument("--reports", help="reports: CSV, TSV, Parquet, JSON Lines or a folder of <accession>.txt "
                   "files, in any common encoding; columns, key matching and bad input: docs/indexing.md")
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CMR_DATA or ./cmr-data)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder: ours (config.json + "
                   "model.safetensors) or the published CMR-CLIP (config.json + pytorch_model.bin); default "
                   "$CMR_CHECKPOINT, else DATA/model, else the shipped checkpoint")
    add_untrained_arg(p)
    p.add_argument("--shard", default=None, metavar="i/N", help="index only shard i of N (by study key hash)")
    p.add_argument("--batch", type=int, default=32, help="studies per embedding batch (default 32)")
    p.add_argument("--url", default=None, help="Qdrant server URL (default $QDRANT_URL; unset = embedded)")
    p.add_argument("--api-key", default=None, help="Qdrant API key (default $QDRANT_API_KEY)")
    add_server_security_args(p)
    add_layout_args(p)
    add_dicomweb_args(p)
    p.add_argument("--workers", type=int, default=1, help="DICOM decoding processes for prepare (default 1)")
    p.add_argument("--salt-file", help="secret salt for study/patient keys (see `cmr prepare --help`)")
    p.add_argument("--device", default=None, help="torch device (default cuda when present, else cpu)")
    p.add_argument("--optimize", action="store_true", help="build the HNSW graph now (embedded; done "
                   "automatically from 20,000 points)")
    p.add_argument("--rebuild", action="store_true", help="drop the collection first and index everything "
                   "again from DATA/cache (for a model with another embedding size, or to recover a damaged "
                   "index: see docs/failure.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    return p


def build_push_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr index push", description="Copy the embedded index (DATA/index) "
                                "to a Qdrant server: every point with its vectors and payload, same ids.")
    p.add_argument("--url", default=None, help="Qdrant server URL (default $QDRANT_URL)")
    p.add_argument("--api-key", default=None, help="Qdrant API key (default $QDRANT_API_KEY)")
    add_server_security_args(p)
    add_layout_args(p)
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CMR_DATA or ./cmr-data)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    return p


def add_layout_args(p: argparse.ArgumentParser) -> None:
    """How a collection created now is laid out (search.collection.CollectionOptions)."""
    p.add_argument("--shards", type=int, default=None, metavar="N", help="server: shards of a new collection "
                   "(a cluster spreads them over its nodes; compose.cluster.yaml)")
    p.add_argument("--replicas", type=int, default=None, metavar="N", help="server: copies of each shard on "
                   "distinct cluster nodes (replication factor) of a new collection")
    p.add_argument("--quantize", action="store_true", help="int8 scalar quantization of a new collection: "
                   "about 4x less vector memory (docs/sizing.md)")


def add_dicomweb_args(p: argparse.ArgumentParser) -> None:
    """Index from a PACS: QIDO-RS finds MR studies, WADO-RS pulls their cine and LGE series (docs/indexing.md)."""
    g = p.add_argument_group("from a PACS over DICOMweb (credentials: $CMR_DICOMWEB_TOKEN, or "
                             "$CMR_DICOMWEB_USER and $CMR_DICOMWEB_PASSWORD)")
    g.add_argument("--dicomweb", metavar="URL", help="the PACS's DICOMweb root, e.g. https://pacs/dicom-web: "
                   "its MR studies are pulled to DATA/dicomweb (resumable) and indexed")
    g.add_argument("--since", metavar="DATE", help="studies from this StudyDate on (YYYY-MM-DD)")
    g.add_argument("--until", metavar="DATE", help="studies up to this StudyDate (YYYY-MM-DD)")
    g.add_argument("--study-date", metavar="DATE", help="studies of this one day (YYYY-MM-DD)")
    g.add_argument("--study-description", metavar="PATTERN", help="StudyDescription to match (* and ? "
                   "wildcards, as the PACS's QIDO-RS matches)")
    g.add_argument("--max-rps", type=float, default=10.0, help="at most this many requests a second to the "
                   "PACS (default 10; 0 = no limit)")


def dicomweb_query(args) -> StudyQuery | None:
    """--dicomweb (or a dicomweb+ ARCHIVE) -> the study query; None without one. DicomwebError (usage) for
    PACS flags without a PACS, a PACS and an archive folder both, or a bad date."""
    if args.archive and args.archive.startswith(PREFIX):
        if args.dicomweb:
            raise DicomwebError("give the PACS once: --dicomweb URL or dicomweb+URL", usage=True)
        args.dicomweb, args.archive = args.archive, None
    query = StudyQuery(args.since, args.until, args.study_date, args.study_description)
    if not args.dicomweb:
        if any(vars(query).values()):
            raise DicomwebError("--since/--until/--study-date/--study-description need --dicomweb URL", usage=True)
        return None
    if args.archive:
        raise DicomwebError(f"give an archive folder ({args.archive}) or --dicomweb, not both", usage=True)
    dicomweb_url(args.dicomweb)                     # a bad URL or date: exit 2 before any work
    query.filters()
    return query


def pull_from_pacs(args, settings: Settings, query: StudyQuery, shard) -> str | None:
    """Stage the query's studies from the PACS under DATA/dicomweb (indexer/dicomweb.py) -> the folder to
    prepare and index; None when nothing is staged but DATA/cache exists (index it as it is)."""
    salt = load_or_create_salt(args.salt_file, not_inside=(settings.folder.cache,))
    r = pull_studies(args.dicomweb, query, settings.data, salt, max_rps=args.max_rps, progress=not args.no_progress,
                     select=(lambda k: in_shard(k, shard)) if shard else None)
    for e in r.errors:
        print(f"cmr index: dicomweb: study {e.study}: {e.reason}; skipped (tried again next run)", file=sys.stderr)
    print(f"dicomweb: {r.n_found} MR studies found, {r.n_pulled} pulled ({r.n_series} of {r.n_series_seen} series, "
          f"{r.n_files} files), {r.n_skipped} pulled before, {len(r.errors)} failed")
    if any(r.staging.iterdir()):
        return str(r.staging)
    if settings.folder.studies_table.exists():
        return None
    raise DicomwebError(f"no MR study to index from {args.dicomweb} ({r.n_found} matched the query, none pulled)")


def layout_options(args, url: str | None):
    """--shards/--replicas/--quantize -> CollectionOptions; CollectionOptionsError (exit 2) when invalid or
    when shards/replicas are asked of the embedded index."""
    options = CollectionOptions(quantize=args.quantize, shards=args.shards, replicas=args.replicas)
    if not url:
        options.check_embedded()
    return options


def _fail(prog: str, exc: BaseException) -> int:
    print(f"{prog}: {exc}", file=sys.stderr)
    return 2 if getattr(exc, "usage", False) else 1


def settings_from(args) -> Settings:
    """--data, --checkpoint, --url, --api-key, --tls-ca, --insecure over the environment."""
    return Settings.from_env(data=args.data, checkpoint=getattr(args, "checkpoint", None),
                             untrained=getattr(args, "untrained", False), url=args.url,
                             api_key=args.api_key, tls_ca=args.tls_ca, insecure=args.insecure)


def _push(argv: list[str]) -> int:
    try:
        args = build_push_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    settings = settings_from(args)
    if not settings.url:
        print("cmr index push: give --url (or set QDRANT_URL) of the server to copy to", file=sys.stderr)
        return 2
    from cmr_search.indexer.index import push              # torch: imported once the flags are good
    try:
        n = push(settings, progress=not args.no_progress, options=layout_options(args, settings.url))
    except SearchError as exc:
        return _fail("cmr index push", exc)
    print(f"pushed the embedded index to {settings.url}: {n} points there")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "push":
        return _push(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    from cmr_search.indexer.index import index_archive     # torch: `cmr index --help` stays fast
    from cmr_search.indexer.model_source import UntrainedModelWarning, check_demo_model
    from cmr_search.indexer.prepare import check_archive
    try:
        shard = parse_shard(args.shard)
    except ValueError as exc:
        print(f"cmr index: {exc}", file=sys.stderr)
        return 2
    try:
        query = dicomweb_query(args)                 # None unless --dicomweb / dicomweb+URL
    except DicomwebError as exc:
        return _fail("cmr index", exc)
    if args.archive is not None and not Path(args.archive).is_dir():
        print(f"cmr index: archive folder {args.archive} not found", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("cmr index: --batch must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.archive is not None:
            check_archive(args.archive)        # an empty or non-DICOM folder: exit 1 before any work
    except IndexerError as exc:
        return _fail("cmr index", exc)
    settings = settings_from(args)
    try:
        options = layout_options(args, settings.url)
    except SearchError as exc:
        return _fail("cmr index", exc)
    try:
        args.archive = pull_from_pacs(args, settings, query, shard) if query else args.archive
    except (IndexerError, OSError) as exc:
        return _fail("cmr index", exc)
    with warnings.catch_warnings():
        warnings.simplefilter("once", UntrainedModelWarning)
        warnings.showwarning = lambda msg, *a, **k: print(f"cmr index: WARNING: {msg}", file=sys.stderr)
        try:
            r = index_archive(args.archive, args.reports, settings, shard=shard, batch=args.batch,
                              workers=max(1, args.workers), salt_file=args.salt_file, device=args.device,
                              progress=not args.no_progress, optimize=True if args.optimize else None,
                              rebuild=args.rebuild, options=options)
        except (IndexerError, ModelError, SearchError, OSError) as exc:
            return _fail("cmr index", exc)
    rate = r.n_indexed / r.embed_seconds if r.embed_seconds > 0 else 0.0
    part = f" (shard {args.shard})" if shard else ""
    print(f"indexed {r.n_indexed} studies{part}, {r.n_skipped} already up to date, {r.n_points} points in "
          f"{r.where}; model {r.model_id}; {r.seconds:.1f} s ({rate:.1f} studies/s embedding)")
    if (note := check_demo_model(settings.data)) is not None:
        print(f"cmr index: WARNING: {note}", file=sys.stderr)
    summary = ReportSummary.load(settings.folder.cache) if args.archive and args.reports else None
    for line in summary.lines() if summary else ():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`cmr index`: embed an archive's studies and reports into the search index; `cmr index push`.

    cmr index ARCHIVE --reports FILE [--data DIR] [--checkpoint CKPT] [--shard i/N] [--batch 32] [--url URL]
    cmr index push --url URL [--api-key KEY] [--data DIR]       # copy the embedded index to a server
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

from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.shards import parse_shard
from cmr_search.model.errors import ModelError
from cmr_search.search.collection import CollectionOptions
from cmr_search.search.errors import SearchError
from cmr_search.search.settings import Settings
from cmr_search.ui.search_cmd import add_server_security_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr index", description="Embed an archive into the search index.",
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", nargs="?", help="archive folder (omit to index DATA/cache as it is)")
    p.add_argument("--reports", help="reports: CSV, Parquet, JSONL or a folder of <accession>.txt files")
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CMR_DATA or ./cmr-data)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default $CMR_CHECKPOINT, else the "
                   "shipped checkpoint, else an untrained cmr-tiny with a warning)")
    p.add_argument("--shard", default=None, metavar="i/N", help="index only shard i of N (by study key hash)")
    p.add_argument("--batch", type=int, default=32, help="studies per embedding batch (default 32)")
    p.add_argument("--url", default=None, help="Qdrant server URL (default $QDRANT_URL; unset = embedded)")
    p.add_argument("--api-key", default=None, help="Qdrant API key (default $QDRANT_API_KEY)")
    add_server_security_args(p)
    add_layout_args(p)
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
    return Settings.from_env(data=args.data, checkpoint=getattr(args, "checkpoint", None), url=args.url,
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
    from cmr_search.indexer.model_source import UntrainedModelWarning
    try:
        shard = parse_shard(args.shard)
    except ValueError as exc:
        print(f"cmr index: {exc}", file=sys.stderr)
        return 2
    if args.archive is not None and not Path(args.archive).is_dir():
        print(f"cmr index: archive folder {args.archive} not found", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("cmr index: --batch must be at least 1", file=sys.stderr)
        return 2
    settings = settings_from(args)
    try:
        options = layout_options(args, settings.url)
    except SearchError as exc:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

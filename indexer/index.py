"""`cmr index`: archive -> study cache -> embeddings -> the search index (architecture.md §3).

    settings = Settings.from_env(data="cmr-data")
    result = index_archive("archive/", "reports.csv", settings)                      # embedded store
    result = index_archive(..., settings.with_(url="http://qdrant:6333"), shard=(0, 4))   # worker 0 of 4
    push(settings, "http://qdrant:6333")                                             # embedded -> server

`settings` is one search.settings.Settings (where the data and the index are, how to reach a server, which
checkpoint); a data folder alone stands for `Settings.from_env(data=FOLDER)`.

Per study, one point (id = UUID5 of the study key) with named vectors from the same video tower:
`study` (all views), `cine` (LGE masked), `lge` (cine masked; only when the study has LGE) and `report`
(the de-identified impression; only when there is one), plus the payload of §3 (embedding.py, payload.py).

Resumable and idempotent: studies are embedded in batches and upserted batch by batch; a re-run skips
every study whose point already carries the same `model_id` and `source_fingerprint`, so a killed run
picks up where it stopped and a finished one adds nothing. A skipped point whose measurements are not
the cache's (indexed before the study was measured, or by another segmenter) gets them as a payload
update, without re-embedding. `shard=(i, N)` (shards.py) splits an archive
between N workers. The model comes from model_source.py; the link table is written by link_table.py.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cmr_search.indexer.embedding import clip_batches, embed_batch, report_encoder_for
from cmr_search.indexer.errors import IndexerError
from cmr_search.indexer.link_table import write_link_table
from cmr_search.indexer.model_source import resolve_model, save_model_beside
from cmr_search.indexer.payload import already_indexed, measurement_payload, payload_row
from cmr_search.indexer.prepare import prepare
from cmr_search.indexer.progress import Progress
from cmr_search.indexer.shards import in_shard
from cmr_search.model.device import pick_device
from cmr_search.search.collection import model_id as model_fingerprint
from cmr_search.search.private_files import private_dir
from cmr_search.search.settings import Settings
from cmr_search.search.store import Store

OPTIMIZE_AT = 20_000                       # embedded store: build HNSW once the index has this many points
NO_CACHE = "no study cache at {}; give an ARCHIVE (and --reports) to build it."


@dataclass
class IndexResult:
    data: Path
    where: str                 # the store: a folder or a URL
    model_id: str
    n_studies: int             # studies of this shard in the cache
    n_indexed: int             # embedded and upserted this run
    n_skipped: int             # already indexed with the same model and source
    n_points: int              # points in the collection afterwards
    seconds: float
    embed_seconds: float       # time spent embedding + upserting (the studies/s denominator)
    n_measured: int = 0        # already indexed studies whose payload gained (new) measurements this run


def as_settings(given: Settings | str | Path | None = None, client=None) -> Settings:
    """The settings to work with: `given`, or for a data folder (or None) `Settings.from_env(data=...)`.
    With a qdrant-client `client` (tests) the settings' URL is not used."""
    settings = given if isinstance(given, Settings) else Settings.from_env(data=given)
    return settings.with_(url=None) if client is not None else settings


# ---- the pipeline -----------------------------------------------------------------------------------
def index_archive(archive=None, reports=None, settings: Settings | str | Path | None = None, *, model=None,
                  shard: tuple[int, int] | None = None, batch: int = 32, client=None, workers: int = 1,
                  salt_file=None, device: str | None = None, progress: bool = True, prepare_cache: bool = True,
                  optimize: bool | None = None, rebuild: bool = False, options=None,
                  segmenter=None) -> IndexResult:
    """Prepare DATA/cache from `archive` (incremental; skipped when archive is None), embed the shard's
    studies that are not indexed yet, upsert them, write DATA/link.parquet. `settings`: where the data
    and the index are and which checkpoint to use (search.settings.Settings); `model`: an already built
    model (tests); `client`: a qdrant-client object for the server backend (tests: ':memory:');
    `rebuild`: drop the collection first (e.g. for a model with another embedding size); a server URL
    needs an API key unless `insecure` (search/backends/server.py); `options`:
    search.collection.CollectionOptions (shards, replicas, int8) for a collection created now;
    `segmenter`: what prepare measures with (indexer/prepare.py: None the default checkpoint, False none)."""
    t0 = time.monotonic()
    settings = as_settings(settings, client)
    folder = settings.folder
    if settings.url and client is None:          # refuse an unauthenticated server before any work
        Store.check_server(settings)
    if batch < 1:
        raise ValueError(f"--batch {batch}: must be at least 1")
    if (archive is None or not prepare_cache) and not folder.studies_table.exists():
        raise IndexerError(NO_CACHE.format(folder.cache))
    device = str(pick_device(device))
    source = "given model"
    if model is None:
        model, source = resolve_model(settings.checkpoint, device, None if rebuild else folder.model,
                                      environ=settings.checkpoint_environ, untrained=settings.untrained)
    else:
        model = model.to(device).eval()
    mid = model_fingerprint(model)
    private_dir(folder.root)                     # a new data folder: 0700 (docs/privacy.md)
    save_model_beside(model, folder.root, mid, source, force=rebuild)

    if rebuild:
        Store.drop(settings, client=client)
    with Store.open(settings, client=client, dim=model.embed_dim,
                    options=options) as store:          # opened first: a locked index fails before prepare
        store.check_model_dim(model.embed_dim, f"model {mid}")
        report_encoder = report_encoder_for(store, device)
        if archive is not None and prepare_cache:
            prepare(archive, reports, folder.cache, workers=workers, salt_file=salt_file, progress=progress,
                    select=(lambda k: in_shard(k, shard)) if shard else None, segmenter=segmenter)
        if not folder.studies_table.exists():
            raise IndexerError(NO_CACHE.format(folder.cache))
        table = pl.read_parquet(folder.studies_table)
        rows = [r for r in table.iter_rows(named=True) if in_shard(r["study_key"], shard)]
        fps = {r["study_key"]: r["source_fingerprint"] for r in rows}
        segs = {r["study_key"]: r.get("seg_fingerprint") for r in rows}
        done, stale = already_indexed(store, list(fps), mid, fps, segs)
        for r in rows:                   # measured since they were indexed: the payload only, no re-embedding
            if r["study_key"] in stale:
                store.set_payload(r["study_key"], measurement_payload(r))
        todo = [r for r in rows if r["study_key"] not in done]
        t1 = time.monotonic()
        empty = _embed_and_upsert(store, model, mid, folder.cache, todo, batch, device, report_encoder, progress)
        embed_s = time.monotonic() - t1
        if empty:
            warnings.warn(f"{len(empty)} cached studies have no usable image views and were not indexed "
                          f"(e.g. {empty[0]}); see their qa in {folder.studies_table}.", stacklevel=2)
        n_points = store.count()
        if store.is_embedded and (optimize or (optimize is None and n_points >= OPTIMIZE_AT)):
            store.optimize()
        store.flush()
        where = store.where
    write_link_table(folder, {r["study_key"] for r in rows})
    return IndexResult(folder.root, where, mid, len(rows), len(todo) - len(empty), len(done), n_points,
                       time.monotonic() - t0, embed_s, len(stale))


def _embed_and_upsert(store: Store, model, mid: str, cache: Path, todo: list[dict], batch: int, device: str,
                      report_encoder, progress: bool) -> list[str]:
    """Embed the `todo` cache rows batch by batch and upsert each batch; -> keys of the studies that had no
    usable image view (not indexed)."""
    bar, empty = Progress(len(todo), progress), []
    try:
        for chunk, clips in clip_batches(cache, todo, model.clip_spec, batch):
            keep = [(r, c) for r, c in zip(chunk, clips) if c["study"] is not None]
            empty += [r["study_key"] for r, c in zip(chunk, clips) if c["study"] is None]
            vecs = embed_batch(model, [c for _, c in keep], [r["impression"] for r, _ in keep], device,
                               report_encoder, measures=[r for r, _ in keep])
            store.upsert_studies(payload_row(r, v, mid) for (r, _), v in zip(keep, vecs))
            bar.update(len(chunk))
    finally:
        bar.close()
    return empty


# ---- push: embedded -> server -----------------------------------------------------------------------
def push(settings: Settings | str | Path | None = None, target: Settings | str | None = None, *, client=None,
         batch: int = 256, progress: bool = True, options=None) -> int:
    """Copy every point of the embedded index in the settings' DATA/index (vectors and payload, same ids)
    to a Qdrant server: `target` (Settings, or a URL with the settings' key and CA), else the settings'
    own server; returns the server's point count afterwards. `options`: CollectionOptions (shards,
    replicas, int8) when the server collection is created by this push."""
    source = as_settings(settings, client)
    dest = target if isinstance(target, Settings) else source.with_(url=target or source.url)
    if client is None:
        Store.check_server(dest)                       # refused before the embedded index is read
    with Store.open(source.with_(url=None)) as src:
        total = src.count()
        with Store.open(dest, client=client, dim=src.dim, options=options, text_dim=src.text_dim) as dst:
            bar = Progress(total, progress)
            n = src.copy_to(dst, batch=batch, progress=bar.update)
            bar.close()
            return n

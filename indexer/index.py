"""`cmr index`: archive -> study cache -> embeddings -> the search index (architecture.md §3).

    result = index_archive("archive/", "reports.csv", data="cmr-data")           # embedded store
    result = index_archive(..., url="http://qdrant:6333", shard=(0, 4))          # worker 0 of 4
    push("cmr-data", url="http://qdrant:6333")                                   # embedded -> server

Per study, one point (id = UUID5 of the study key) with named vectors from the same video tower:
`study` (all views), `cine` (LGE views masked), `lge` (cine views masked; only when the study has LGE)
and `report` (the de-identified impression; only when there is one), plus the payload of §3.

Resumable and idempotent: studies are embedded in batches and upserted batch by batch; a re-run skips
every study whose point already carries the same `model_id` and `source_fingerprint` (the cache's hash
of the study's files and report), so a killed run picks up where it stopped and a finished one adds
nothing. `shard=(i, N)` keeps the studies whose key hashes to i mod N, so N workers (each with its own
data folder for the cache, all with the same server URL) split an archive without overlap.

The model: `checkpoint`, else $CMR_CHECKPOINT, else the checkpoint shipped in model/checkpoints/, else a
freshly initialised cmr-tiny with a fixed seed (with a warning: its embeddings are not meaningful). The
weights used are saved to DATA/model so that `cmr search --data DATA` encodes queries with them.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl

from cmr_search.model.preprocess import CINE_VIEWS, LGE_VIEWS, build_clip

FRESH_SEED = 0                             # seed of the untrained stand-in model
FRESH_CONFIG = "cmr-tiny"
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parents[1] / "model" / "checkpoints"
SHIPPED_NAMES = ("cmr-tiny-phantom",)      # preferred shipped checkpoint folder(s), in order
OPTIMIZE_AT = 20_000                       # embedded store: build HNSW once the index has this many points
LOOKUP_CHUNK = 512                         # point ids per retrieve when checking what is already indexed
PAYLOAD_COLUMNS = ("study_key", "patient_key", "age", "sex", "study_date", "manufacturer", "model_name",
                   "field_strength", "views", "n_frames", "impression")


class UntrainedModelWarning(UserWarning):
    """Indexing with a freshly initialised model (no trained checkpoint found)."""


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


# ---- the model ------------------------------------------------------------------------------------
def shipped_checkpoint() -> Path | None:
    """The default checkpoint that ships with the project (model/checkpoints/), if it exists yet."""
    from cmr_search.model.checkpoint import is_checkpoint_folder
    names = [SHIPPED_CHECKPOINTS / n for n in SHIPPED_NAMES]
    others = sorted(SHIPPED_CHECKPOINTS.glob("*/")) if SHIPPED_CHECKPOINTS.is_dir() else []
    return next((p for p in names + others if is_checkpoint_folder(p)), None)


def fresh_model(device: str = "cpu", config: str = FRESH_CONFIG):
    """A config with fixed-seed random weights (a pretrained text backbone stays pretrained): the same
    weights, and so the same model_id, in every process."""
    import torch

    from cmr_search.model import create_model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FRESH_SEED)
        return create_model(config, device=device).eval()


def resolve_model(checkpoint: str | Path | None = None, device: str = "cpu"):
    """-> (model, where it came from). See the module docstring for the order."""
    from cmr_search.model import create_model
    from cmr_search.model.checkpoint import is_checkpoint_folder
    for cand in (checkpoint, os.environ.get("CMR_CHECKPOINT") or None, shipped_checkpoint()):
        if cand is None:
            continue
        if is_checkpoint_folder(cand):
            return create_model(str(cand), device=device).eval(), str(cand)
        if cand is checkpoint:                     # explicit, not a folder: a config name or an error
            from cmr_search.model.config import list_configs
            if str(cand) not in list_configs():
                from cmr_search.model.errors import CheckpointError
                raise CheckpointError(f"--checkpoint {cand}: not a checkpoint folder (config.json + "
                                      f"model.safetensors) nor a config name ({', '.join(list_configs())}).")
            _warn_untrained(str(cand))
            return fresh_model(device, str(cand)), f"fresh {cand} (seed {FRESH_SEED}, untrained)"
    _warn_untrained(FRESH_CONFIG)
    return fresh_model(device), f"fresh {FRESH_CONFIG} (seed {FRESH_SEED}, untrained)"


def _warn_untrained(config: str) -> None:
    warnings.warn(f"no trained checkpoint (looked at --checkpoint, $CMR_CHECKPOINT, {SHIPPED_CHECKPOINTS}): "
                  f"indexing with a freshly initialised {config} (seed {FRESH_SEED}). Its image "
                  "embeddings are NOT meaningful; re-index with a trained checkpoint (`cmr train`, then "
                  "`cmr index --checkpoint DIR`).", UntrainedModelWarning, stacklevel=3)


def save_model_beside(model, data: Path, mid: str, source: str, force: bool = False) -> None:
    """DATA/model = the weights the index was built with (what `search` loads to encode queries);
    `force` (a rebuild) writes them again even when the card says they are there (they may be damaged)."""
    from cmr_search.model.checkpoint import is_checkpoint_folder, save_checkpoint
    folder = data / "model"
    card = folder / "card.json"
    if not force and is_checkpoint_folder(folder) and card.exists():
        try:
            if json.loads(card.read_text()).get("model_id") == mid:
                return
        except (OSError, ValueError):
            pass
    card = {**_source_card(source), "model_id": mid, "source": source,
            "note": "weights the index in ../index was built with"}
    save_checkpoint(model, folder, card=card)


def _source_card(source: str) -> dict:
    """What the source checkpoint's card says of its training data and evaluation (for the UI's About)."""
    try:
        card = json.loads((Path(source) / "card.json").read_text())
    except (OSError, ValueError, TypeError):
        return {}
    return {k: card[k] for k in ("kind", "demonstration_only", "data", "schedule", "device",
                                 "wall_seconds_this_run", "seed", "final_loss", "eval") if k in card}


# ---- selection --------------------------------------------------------------------------------------
def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/N' -> (i, N) with 0 <= i < N; None -> None."""
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= i < N")
    return i, n


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic split by a hash of the study key (the same on every machine and run)."""
    if shard is None:
        return True
    h = int.from_bytes(hashlib.sha256(f"shard\0{key}".encode()).digest()[:8], "big")
    return h % shard[1] == shard[0]


def _already_indexed(store, keys: list[str], mid: str, fps: dict[str, str]) -> set[str]:
    """Keys whose point exists with this model_id and source fingerprint."""
    from cmr_search.search.collection import point_id
    done = set()
    for s in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[s:s + LOOKUP_CHUNK]
        for h in store.backend.retrieve([point_id(k) for k in chunk], False):
            k = h.payload.get("study_key")
            if k in fps and h.payload.get("model_id") == mid and h.payload.get("source_fingerprint") == fps[k]:
                done.add(k)
    return done


# ---- embedding --------------------------------------------------------------------------------------
def study_clips(views: dict[str, np.ndarray], spec) -> dict[str, tuple | None]:
    """One study's cache arrays -> the clip of each image vector (None where the views are absent)."""
    has = {v for v, a in views.items() if a is not None and len(a)}
    if not has:
        return {"study": None, "cine": None, "lge": None}
    return {"study": build_clip(views, spec),
            "cine": build_clip(views, spec, drop=LGE_VIEWS) if has & set(CINE_VIEWS) else None,
            "lge": build_clip(views, spec, drop=CINE_VIEWS) if has & set(LGE_VIEWS) else None}


def embed_batch(model, clips: list[dict], texts: list[str | None], device,
                report_encoder=None) -> list[dict[str, np.ndarray | None]]:
    """Clips of B studies (study_clips) + impressions -> per study {vector name: unit vector or None}.
    All image clips go through the video tower in one pass; impressions through the text tower, and with
    a `report_encoder` (model/report_text.py) also into report_text and report_clauses, and their words into
    report_terms (search/terms.py)."""
    from cmr_search.model.embed import embed_clips, embed_texts
    todo = [(i, name) for i, c in enumerate(clips) for name in ("study", "cine", "lge") if c[name] is not None]
    out = [{"study": None, "cine": None, "lge": None, "report": None} for _ in clips]
    if todo:
        frames = np.stack([clips[i][n][0] for i, n in todo])           # (K, F, S, S)
        ids = np.stack([clips[i][n][1] for i, n in todo])              # (K, F)
        mask = np.stack([clips[i][n][2] for i, n in todo])             # (K, F)
        emb = embed_clips(model, [(frames, ids, mask)], device=device)
        for (i, n), e in zip(todo, emb):
            out[i][n] = e
    has_text = [i for i, t in enumerate(texts) if t and t.strip()]
    if has_text:
        for i, e in zip(has_text, embed_texts(model, [texts[i] for i in has_text])):
            out[i]["report"] = e
    if has_text and report_encoder is not None:
        from cmr_search.search.terms import report_terms
        for i, (whole, clauses) in zip(has_text, report_encoder.encode_reports([texts[i] for i in has_text])):
            out[i]["report_text"], out[i]["report_clauses"] = whole, clauses
            out[i]["report_terms"] = report_terms(texts[i])
    return out


def payload_row(row: dict, vectors: dict, mid: str) -> dict:
    """A cache row + its vectors -> the study row `Store.upsert_studies` takes (collection.py)."""
    out = {c: row.get(c) for c in PAYLOAD_COLUMNS}
    out["views"] = list(out["views"] or [])
    try:
        out["qa"] = json.loads(row["qa"]) if isinstance(row.get("qa"), str) else (row.get("qa") or {})
    except ValueError:
        out["qa"] = {"raw": row.get("qa")}
    out["model_id"] = mid
    out["source_fingerprint"] = row.get("source_fingerprint")
    if row.get("label") is not None:                       # ground truth: synthetic archives only
        out["label"] = row["label"]
    out["vectors"] = {k: v for k, v in vectors.items() if v is not None}
    return out


def _batches(cache: Path, rows: list[dict], spec, size: int) -> Iterator[tuple[list[dict], list[dict]]]:
    """(rows, clips) per batch; the next batch is decoded in a thread while the model runs."""
    from cmr_search.indexer.cache import load_arrays

    def load(chunk):
        return chunk, [study_clips(load_arrays(cache, r["array_path"]), spec) for r in chunk]

    chunks = [rows[s:s + size] for s in range(0, len(rows), size)]
    if not chunks:
        return
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(load, chunks[0])
        for nxt in chunks[1:] + [None]:
            done = pending.result()
            pending = pool.submit(load, nxt) if nxt is not None else None
            yield done


class _Progress:
    """A tqdm bar on a terminal; otherwise one plain line per batch (logs, CI, tests)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.n, self.t0 = total, enabled, 0, time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="study", desc="index", file=sys.stderr)

    def update(self, k: int) -> None:
        self.n += k
        if self.bar is not None:
            self.bar.update(k)
        elif self.enabled:
            rate = self.n / max(time.monotonic() - self.t0, 1e-9)
            print(f"index: {self.n}/{self.total} studies upserted ({rate:.1f} studies/s)", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---- the pipeline -----------------------------------------------------------------------------------
def index_archive(archive=None, reports=None, data=None, *, checkpoint=None, model=None,
                  shard: tuple[int, int] | None = None, batch: int = 32, url: str | None = None,
                  api_key: str | None = None, client=None, workers: int = 1, salt_file=None,
                  device: str | None = None, progress: bool = True, prepare_cache: bool = True,
                  optimize: bool | None = None, rebuild: bool = False, insecure: bool = False,
                  tls_ca: str | None = None, options=None) -> IndexResult:
    """Prepare DATA/cache from `archive` (incremental; skipped when archive is None), embed the shard's
    studies that are not indexed yet, upsert them, write DATA/link.parquet. `model`: an already built
    model (tests); `client`: a qdrant-client object for the server backend (tests: ':memory:');
    `rebuild`: drop the collection first (e.g. for a model with another embedding size); `insecure`,
    `tls_ca`: server security (search/backends/server.py: an API key is required unless insecure);
    `options`: search.collection.CollectionOptions (shards, replicas, int8) for a collection created now."""
    from cmr_search.search import Store
    from cmr_search.search.collection import model_id as model_fingerprint
    from cmr_search.search.store import default_data
    t0 = time.monotonic()
    data = Path(data) if data is not None else default_data()
    cache = data / "cache"
    url = url or (None if client is not None else os.environ.get("QDRANT_URL") or None)
    if url and client is None:                   # refuse an unauthenticated server before any work
        from cmr_search.search.backends.server import client_options
        client_options(url, api_key, insecure, tls_ca)
    if batch < 1:
        raise ValueError(f"--batch {batch}: must be at least 1")
    if (archive is None or not prepare_cache) and not (cache / "studies.parquet").exists():
        from cmr_search.indexer.errors import IndexerError
        raise IndexerError(f"no study cache at {cache}; give an ARCHIVE (and --reports) to build it.")
    device = device or _default_device()
    source = "given model"
    if model is None:
        model, source = resolve_model(checkpoint, device)
    else:
        model = model.to(device).eval()
    mid = model_fingerprint(model)
    data.mkdir(parents=True, exist_ok=True)
    save_model_beside(model, data, mid, source, force=rebuild)

    if rebuild:
        drop_collection(data, url, api_key, client, insecure=insecure, tls_ca=tls_ca)
    with Store.open(data=None if (url or client) else data, url=url, api_key=api_key, client=client,
                    dim=model.embed_dim, insecure=insecure, tls_ca=tls_ca,
                    options=options) as store:       # opened first: a locked index fails before prepare
        store.check_model_dim(model.embed_dim, f"model {mid}")
        report_encoder = _report_encoder(store, device)
        if archive is not None and prepare_cache:
            from cmr_search.indexer.prepare import prepare
            prepare(archive, reports, cache, workers=workers, salt_file=salt_file, progress=progress,
                    select=(lambda k: in_shard(k, shard)) if shard else None)
        if not (cache / "studies.parquet").exists():
            from cmr_search.indexer.errors import IndexerError
            raise IndexerError(f"no study cache at {cache}; give an ARCHIVE (and --reports) to build it.")
        table = pl.read_parquet(cache / "studies.parquet")
        rows = [r for r in table.iter_rows(named=True) if in_shard(r["study_key"], shard)]
        fps = {r["study_key"]: r["source_fingerprint"] for r in rows}
        done = _already_indexed(store, list(fps), mid, fps)
        todo = [r for r in rows if r["study_key"] not in done]
        t1 = time.monotonic()
        bar, empty = _Progress(len(todo), progress), []
        try:
            for chunk, clips in _batches(cache, todo, model.clip_spec, batch):
                keep = [(r, c) for r, c in zip(chunk, clips) if c["study"] is not None]
                empty += [r["study_key"] for r, c in zip(chunk, clips) if c["study"] is None]
                vecs = embed_batch(model, [c for _, c in keep], [r["impression"] for r, _ in keep], device,
                                   report_encoder)
                store.upsert_studies(payload_row(r, v, mid) for (r, _), v in zip(keep, vecs))
                bar.update(len(chunk))
        finally:
            bar.close()
        embed_s = time.monotonic() - t1
        if empty:
            warnings.warn(f"{len(empty)} cached studies have no usable image views and were not indexed "
                          f"(e.g. {empty[0]}); see their qa in {cache / 'studies.parquet'}.", stacklevel=2)
        n_points = store.count()
        if store.backend.name == "embedded" and (optimize or (optimize is None and n_points >= OPTIMIZE_AT)):
            store.optimize()
        store.flush()
        where = store.backend.where
    _write_link(cache, data, {r["study_key"] for r in rows})
    return IndexResult(data, where, mid, len(rows), len(todo) - len(empty), len(done), n_points,
                       time.monotonic() - t0, embed_s)


def _report_encoder(store, device: str):
    """The sentence encoder of the collection's report-text vectors; None for a collection without them."""
    if not store.has_report_text:
        warnings.warn(f"{store.backend.where} was made before report-text search: reports get only the model's "
                      "`report` vector. `cmr index --rebuild` adds report_text, report_clauses and report_terms.",
                      stacklevel=3)
        return None
    from cmr_search.model.report_text import ReportTextEncoder
    enc = ReportTextEncoder(device=device)
    if enc.dim != store.text_dim:
        from cmr_search.search.errors import EmbedSizeMismatchError
        raise EmbedSizeMismatchError(store.text_dim, enc.dim, store.backend.where, f"report-text encoder {enc.name}")
    return enc


def drop_collection(data: Path, url: str | None = None, api_key: str | None = None, client=None, *,
                    insecure: bool = False, tls_ca: str | None = None) -> None:
    """Delete the collection (embedded folder or server collection); the next open creates it anew."""
    from cmr_search.search.collection import DEFAULT_COLLECTION
    if url or client is not None:
        from cmr_search.search.backends.server import ServerBackend
        b = ServerBackend(DEFAULT_COLLECTION, url=url, api_key=api_key, client=client, insecure=insecure,
                          tls_ca=tls_ca)
        if b.vector_size() is not None:
            b.client.delete_collection(DEFAULT_COLLECTION)
        if client is None:
            b.close()
        return
    from cmr_search.search.backends.edge import EdgeBackend
    from cmr_search.search.errors import IndexCorruptError
    try:
        EdgeBackend(data / "index", DEFAULT_COLLECTION).close()   # opening it checks nobody else holds it
    except IndexCorruptError:
        pass                                                # damaged: exactly what a rebuild is for
    import shutil
    index = data / "index"
    shutil.rmtree(index / DEFAULT_COLLECTION, ignore_errors=True)
    (index / f"{DEFAULT_COLLECTION}.check").unlink(missing_ok=True)


def _default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def _write_link(cache: Path, data: Path, keys: set[str]) -> None:
    """DATA/link.parquet: study_key -> raw identifiers of the indexed studies (merged with earlier runs),
    beside the index and never in it."""
    from cmr_search.indexer.cache import LINK_COLUMNS, _atomic_write, remove_stale_temps
    src = cache / "link.parquet"
    if not src.exists():
        return
    remove_stale_temps(data)
    new = pl.read_parquet(src).filter(pl.col("study_key").is_in(sorted(keys)))
    dst = data / "link.parquet"
    merged = pl.concat([_read_old_link(dst), new], how="diagonal_relaxed")
    merged = merged.unique("study_key", keep="last", maintain_order=True).select(LINK_COLUMNS)
    buf = io.BytesIO()
    merged.write_parquet(buf)
    _atomic_write(dst, buf.getvalue())


def _read_old_link(dst: Path) -> pl.DataFrame:
    """The link table of earlier runs; a damaged one is rebuilt from the cache's (with a warning)."""
    if not dst.exists():
        return pl.DataFrame()
    try:
        return pl.read_parquet(dst)
    except Exception as e:                          # polars raises its own error types for a bad file
        warnings.warn(f"{dst} is unreadable ({type(e).__name__}); writing it again from the study cache.",
                      stacklevel=3)
        return pl.DataFrame()


# ---- push: embedded -> server -----------------------------------------------------------------------
def push(data=None, url: str | None = None, api_key: str | None = None, *, client=None,
         batch: int = 256, progress: bool = True, insecure: bool = False, tls_ca: str | None = None,
         options=None) -> int:
    """Copy every point of the embedded index in DATA/index (vectors and payload, same ids) to a Qdrant
    server; returns the server's point count afterwards. `options`: CollectionOptions (shards, replicas,
    int8) when the server collection is created by this push."""
    from cmr_search.search import Store
    from cmr_search.search.backends.server import client_options
    from cmr_search.search.store import default_data
    if client is None:
        client_options(url, api_key, insecure, tls_ca)     # refuse before reading the embedded index
    data = Path(data) if data is not None else default_data()
    with Store.open(data=data) as src:
        total = src.count()
        with Store.open(url=url, api_key=api_key, client=client, dim=src.dim, insecure=insecure,
                        tls_ca=tls_ca, options=options, text_dim=src.text_dim) as dst:
            bar = _Progress(total, progress)
            page: list = []
            for hit in src.scroll(vectors=True, batch=batch):
                page.append((hit.id, hit.vectors, hit.payload))
                if len(page) >= batch:
                    dst.backend.upsert(page)
                    bar.update(len(page))
                    page = []
            if page:
                dst.backend.upsert(page)
                bar.update(len(page))
            bar.close()
            return dst.count()

"""Training and evaluation data from the study cache (architecture.md §1).

    ds = CacheDataset("cmr-data/cache", spec)            # every study with arrays
    frames, view_ids, mask, text, label = ds[0]         # one study, built by model.preprocess.build_clip
    stream = BatchStream(ds, batch_size=64, seed=0)     # callable: stream(start) -> batches from there
    Trainer(model, cfg).fit(stream)                     # resume seeks instead of re-reading data

The cache: CACHE/studies.parquet (one row per study) and CACHE/arrays/<key>.npz (views, float16).
`label`, `split` (report wording) and `finding_labels` exist only for synthetic archives.

Study-level hold-out: `holdout_mask(keys)` puts a study in the hold-out when a salted SHA-256 of its
study_key falls below `fraction`; it depends on the key alone, so it is the same on every machine, for
every cache holding that study, and it is recorded in the checkpoint card (`holdout_spec`).

View dropout is the Trainer's (model.training.trainer.view_dropout, applied to the mask of every training batch);
the dataset returns full masks, or masks with `drop` views removed for sub-view embeddings (cine / LGE).
"""
from __future__ import annotations

import collections
import hashlib
import json
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import polars as pl

from ..cache_folder import CacheFolder
from ..errors import DataError
from ..measures import ABSOLUTE, MEASURES, measure_matrix
from ..preprocess import VIEW_ID, ClipSpec, build_clip

FINDINGS = ("lv_dilation", "lv_dysfunction", "rv_dilation", "rv_dysfunction", "lv_hypertrophy",
            "lge_present", "aortic_dilation", "pericardial_effusion")
HOLDOUT_SALT = "cmr-search/holdout-v1"
HOLDOUT_FRACTION = 0.2


# ---- hold-out ------------------------------------------------------------------------------------
def holdout_score(key: str, salt: str = HOLDOUT_SALT) -> float:
    """A uniform number in [0, 1) from the study key alone."""
    h = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def holdout_mask(keys: Sequence[str], fraction: float = HOLDOUT_FRACTION, salt: str = HOLDOUT_SALT) -> np.ndarray:
    """(N,) bool: True = held out for evaluation."""
    return np.array([holdout_score(k, salt) < fraction for k in keys], dtype=bool)


def holdout_spec(fraction: float = HOLDOUT_FRACTION, salt: str = HOLDOUT_SALT) -> dict:
    """What a checkpoint card records so that `cmr eval` finds the same hold-out."""
    return {"method": "sha256(salt + '\\0' + study_key)[:8] / 2**64 < fraction", "fraction": fraction,
            "salt": salt}


def read_keys(path: str | Path) -> list[str]:
    """Study keys from a text file (one per line, '#' comments), or a CSV/Parquet with a study_key column."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"key file {p} not found; give a text file with one study_key per line.")
    if p.suffix in (".parquet", ".csv"):
        df = pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p)
        if "study_key" not in df.columns:
            raise DataError(f"{p} has no study_key column (columns: {df.columns}).")
        return [str(k) for k in df["study_key"].to_list()]
    lines = (ln.split("#", 1)[0].strip() for ln in p.read_text().splitlines())
    return [ln.split(",")[0].strip() for ln in lines if ln and ln != "study_key"]


def keys_digest(keys: Sequence[str]) -> str:
    """Order-free fingerprint of a key set (for cards)."""
    return hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:16]


# ---- the dataset ---------------------------------------------------------------------------------
def _read_studies(cache_dir: Path):
    """CACHE/studies.parquet with the optional columns filled and `array_file` = the npz path."""
    path = CacheFolder(cache_dir).studies_table
    if not path.exists():
        raise DataError(f"{path} not found; build the cache with `cmr prepare ARCHIVE --out {cache_dir}`.")
    df = pl.read_parquet(path)
    for col in ("label", "split", "finding_labels", "impression"):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(col))
    files = [str(cache_dir / p) for p in df["array_path"].to_list()]      # absolute paths stay as they are
    return df.with_columns(pl.Series("array_file", files, dtype=pl.Utf8))


class CacheDataset:
    """The studies of one cache folder (or of several, in order), built into model clips lazily.

    cache_dir: folder with studies.parquet and arrays/, or a list of such folders (a study key may
        appear in only one of them).
    spec: the model's ClipSpec (frame layout and size).
    split: keep only studies whose report wording split equals this ("train" / "test"; synthetic only).
    keys: keep only these study keys (in cache order); exclude: drop these keys.
    require_text: drop studies without an impression (training needs pairs).
    memory_bytes: clips kept in memory (float16) up to this budget, so later epochs skip the npz decode.
    """

    def __init__(self, cache_dir: str | Path | Sequence[str | Path], spec: ClipSpec | None = None,
                 split: str | None = None, keys: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
                 require_text: bool = False, memory_bytes: int = 2 << 30):
        dirs = [cache_dir] if isinstance(cache_dir, (str, Path)) else list(cache_dir)
        self.cache_dirs = [Path(d) for d in dirs]
        self.spec = spec or ClipSpec()
        df = pl.concat([_read_studies(d) for d in self.cache_dirs], how="diagonal_relaxed")
        if df["study_key"].n_unique() < len(df):
            dup = df.filter(pl.col("study_key").is_duplicated())["study_key"][0]
            raise DataError(f"study {dup} is in more than one of the caches {[str(d) for d in self.cache_dirs]}; "
                            "give each study once (one cache per archive).")
        if split is not None:
            df = df.filter(pl.col("split") == split)
        if keys is not None:
            order = {k: i for i, k in enumerate(keys)}
            df = df.filter(pl.col("study_key").is_in(list(order)))
        if exclude:
            df = df.filter(~pl.col("study_key").is_in(list(exclude)))
        if require_text:
            df = df.filter(pl.col("impression").is_not_null() & (pl.col("impression").str.strip_chars() != ""))
        self.table = df
        self.keys: list[str] = df["study_key"].to_list()
        self.texts: list[str] = [t or "" for t in df["impression"].to_list()]
        self.labels: list[str | None] = df["label"].to_list()
        self.splits: list[str | None] = df["split"].to_list()
        self._paths: list[str] = df["array_file"].to_list()
        self._memory: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._budget, self._used = memory_bytes, 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        where = ", ".join(str(d) for d in self.cache_dirs)
        return f"CacheDataset({where!r}, {len(self)} studies)"

    # -- ground truth (synthetic caches) ----------------------------------------------------------
    def findings(self) -> dict[str, np.ndarray]:
        """finding -> (N,) float array of 0/1, NaN where unknown."""
        out = {f: np.full(len(self), np.nan) for f in FINDINGS}
        for i, raw in enumerate(self.table["finding_labels"].to_list()):
            if not raw:
                continue
            d = json.loads(raw) if isinstance(raw, str) else dict(raw)
            for f in FINDINGS:
                if d.get(f) is not None:
                    out[f][i] = float(bool(d[f]))
        return out

    def summary(self) -> dict:
        """A JSON-ready description for checkpoint cards."""
        views = collections.Counter(v for vs in self.table["views"].to_list() for v in (vs or [])) \
            if "views" in self.table.columns else {}
        caches = [str(d.resolve()) for d in self.cache_dirs]
        return {"cache": caches[0] if len(caches) == 1 else caches, "n_studies": len(self),
                "keys_sha256_16": keys_digest(self.keys),
                "labels": dict(collections.Counter(x for x in self.labels if x is not None)),
                "wording_splits": dict(collections.Counter(x for x in self.splits if x is not None)),
                "views": dict(views), "with_report": sum(bool(t.strip()) for t in self.texts)}

    # -- clips ------------------------------------------------------------------------------------
    def views(self, i: int) -> dict[str, np.ndarray]:
        p = Path(self._paths[i])
        try:
            with np.load(p) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {p} ({exc}); re-run `cmr prepare` to rebuild the cache.") from exc

    def clip(self, i: int, drop: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Study i -> (frames (F, S, S) float32, view_ids (F,), mask (F,) bool)."""
        if not drop:
            with self._lock:
                hit = self._memory.get(i)
            if hit is not None:
                frames, mask = hit
                return frames.astype(np.float32), self._view_ids(), mask.copy()
        frames, ids, mask = build_clip(self.views(i), self.spec, drop=drop)
        half = frames.astype(np.float16)      # kept and returned at float16 precision (the cache's own),
        if not drop and half.nbytes + self._used <= self._budget:   # so a study reads the same every time
            with self._lock:
                if i not in self._memory:
                    self._memory[i] = (half, mask)
                    self._used += half.nbytes
        return half.astype(np.float32), ids, mask

    def preload(self, workers: int = 4) -> int:
        """Build every clip into the memory budget with `workers` threads (npz decode releases the GIL),
        so the first epoch runs at the speed of the later ones. Returns the number of clips in memory."""
        if workers <= 1:
            for i in range(len(self)):
                self.clip(i)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(self.clip, range(len(self)), chunksize=16))
        return len(self._memory)

    def _view_ids(self) -> np.ndarray:
        return np.asarray([VIEW_ID[v] for v, n in self.spec.layout for _ in range(n)], np.int64)

    def __getitem__(self, i: int):
        """-> (frames, view_ids, mask, impression, label)."""
        frames, ids, mask = self.clip(i)
        return frames, ids, mask, self.texts[i], self.labels[i]

    def batch(self, idx: Sequence[int], drop: tuple[str, ...] = ()):
        """-> (frames (B, F, S, S), view_ids (B, F), mask (B, F), texts list[str]) as numpy / list."""
        clips = [self.clip(int(i), drop) for i in idx]
        return (np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips]),
                np.stack([c[2] for c in clips]), [self.texts[int(i)] for i in idx])

    def eval_batches(self, batch_size: int = 64, drop: tuple[str, ...] = (), idx: Sequence[int] | None = None):
        """In-order batches of all (or `idx`) studies, for embedding: batch() plus the studies'
        measurement features (model/measures.py), which a model with a measure head reads."""
        idx = np.arange(len(self)) if idx is None else np.asarray(idx)
        feats = self.measure_features()
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            yield (*self.batch(part, drop), feats[part])

    def measure_features(self) -> np.ndarray:
        """(N, N_FEATURES) from the measurement columns `cmr prepare` wrote (zeros: not measured)."""
        cols = [c for c in self.table.columns if c in MEASURE_COLUMNS]
        return measure_matrix(self.table.select(cols).to_dicts() if cols else [None] * len(self))


MEASURE_COLUMNS = (*MEASURES, *ABSOLUTE.values(), "seg_quality")
_NOTHING = object()


# ---- batching for the Trainer ---------------------------------------------------------------------
class BatchStream:
    """Deterministic shuffled batches, callable as `stream(start)` so that Trainer.fit resumes by seeking.

    Global batch g (of `batch_size` studies) is slice g % steps_per_epoch of the permutation of epoch
    g // steps_per_epoch, drawn from numpy's default_rng([seed, epoch]); the last partial batch of an epoch
    is dropped. Under DDP (world > 1) the stream yields world per-rank batches per global batch, in rank
    order (the Trainer gives rank r the items r, r + world, ...), and `None` in the other ranks' places,
    so each rank decodes only its own studies; the gathered features then equal one process's batch.
    """

    def __init__(self, ds: CacheDataset, batch_size: int, seed: int = 0, epochs: int | None = None,
                 world: int = 1, rank: int = 0, prefetch: bool = True):
        if batch_size % world:
            raise DataError(f"batch size {batch_size} is not divisible by {world} processes; "
                            "choose a batch that is a multiple of --nproc_per_node.")
        if len(ds) < batch_size:
            raise DataError(f"{len(ds)} training studies < batch size {batch_size}; lower --batch.")
        self.ds, self.batch_size, self.seed, self.epochs = ds, batch_size, seed, epochs
        self.world, self.rank, self.prefetch = world, rank, prefetch
        self.steps_per_epoch = len(ds) // batch_size
        self._perm_cache: dict[int, np.ndarray] = {}

    @property
    def total_steps(self) -> int | None:
        return None if self.epochs is None else self.epochs * self.steps_per_epoch

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            self._perm_cache = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.ds))}
        return self._perm_cache[epoch]

    def indices(self, step: int) -> np.ndarray:
        """Dataset indices of global batch `step`."""
        epoch, b = divmod(step, self.steps_per_epoch)
        return self.permutation(epoch)[b * self.batch_size:(b + 1) * self.batch_size]

    def _items(self, start: int) -> Iterator[tuple[int, np.ndarray | None]]:
        per = self.batch_size // self.world
        j = start
        while self.total_steps is None or j < self.total_steps * self.world:
            step, r = divmod(j, self.world)
            yield j, (self.indices(step)[r * per:(r + 1) * per] if r == self.rank else None)
            j += 1

    def __call__(self, start: int = 0) -> Iterator:
        """Per-rank batches from item `start` (= global step * world) on; None for other ranks' items."""
        items = self._items(start)
        if not self.prefetch:
            for _, idx in items:
                yield None if idx is None else self.ds.batch(idx)
            return
        with ThreadPoolExecutor(1) as pool:          # decode the next batch while the model trains
            pending = _NOTHING
            for _, idx in items:
                fut = None if idx is None else pool.submit(self.ds.batch, idx)
                if pending is not _NOTHING:
                    yield None if pending is None else pending.result()
                pending = fut
            if pending is not _NOTHING:
                yield None if pending is None else pending.result()

    def __iter__(self):
        return self(0)

"""The Python client (architecture.md §5): text -> study, study -> study, study -> report, refine, label.

    from cmr_search.search import connect, Filter
    c = connect("cmr-data", checkpoint="ckpt/")          # or connect(url="http://localhost:6333")
    c = connect(Settings.from_env(data="cmr-data"))      # or with the Settings a command built
    c.search("amyloid LGE pattern", k=20, filters=Filter(sex="F", age=(40, 80)))  # -> polars.DataFrame

Queries: an empty query is an error; a query longer than MAX_QUERY_CHARS is cut to that length with a
QueryTruncatedWarning (the text tower reads at most 256 tokens, about 1,000-1,500 characters, anyway).
The model is loaded once per client, on the first text query, and query embeddings are cached: the
checkpoint is `Settings.resolve_checkpoint(shipped=False)` (explicit, $CMR_CHECKPOINT, DATA/model; never
the shipped one: with none of them, ModelNotFoundError).
"""
from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import polars as pl

from cmr_search.model.errors import CheckpointError, ModelError

from .cohort import Cohort
from .collection import DEFAULT_COLLECTION, VIEWS, model_id
from .errors import IndexCorruptError, ModelNotFoundError, QueryError
from .filters import Filter, to_filter
from .fusion import IMAGE_VECTORS, MEASURED_WEIGHT, image_weight, weighted_rrf
from .labeling import score_studies
from .measured_terms import measured_intents, rank_by_intents
from .results import to_frame
from .settings import Settings
from .store import Store, check_limit
from .terms import query_terms

MAX_QUERY_CHARS = 2_000
QUERY_CACHE = 1_024
MODES = ("image", "report", "hybrid")
LABEL_TEMPERATURE = 0.01        # softmax temperature of zero-shot label scores (CLIP's logit scale 100)


class QueryTruncatedWarning(UserWarning):
    """A text query longer than MAX_QUERY_CHARS was cut."""


class Client:
    def __init__(self, store: Store, settings: Settings | None = None, model=None):
        """`store`: the open index; `settings`: where the model comes from (its checkpoint, else
        $CMR_CHECKPOINT, else DATA/model; default Settings.from_env()); `model`: an already-built model."""
        self.store = store
        self.settings = settings if settings is not None else Settings.from_env()
        self._model = model
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._report_queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._report_encoder = None
        self.use_measurements = True      # hybrid: rank by the measurements a query names (search/fusion.py)
        if model is not None or self.settings.checkpoint is not None:
            self.model                                     # load now: refuse a wrong size at connect

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    # ---- the text encoder, loaded once ----------------------------------------------------------
    @property
    def model(self):
        if self._model is None:
            self._model = _load_model(self.settings)
        if not getattr(self, "_checked", False):
            self.store.check_model_dim(self._model.embed_dim, f"model {model_id(self._model)}")
            self._checked = True
        return self._model

    def encode_query(self, text: str) -> np.ndarray:
        """A text query -> its L2-normalised embedding (cached per exact string)."""
        text = _clean_query(text)
        if text not in self._queries:
            from cmr_search.model import embed_texts        # torch: imported with the first text query
            self._queries[text] = embed_texts(self.model, [text])[0]
            while len(self._queries) > QUERY_CACHE:
                self._queries.popitem(last=False)
        return self._queries[text]

    def encode_report_query(self, text: str) -> np.ndarray:
        """A text query -> its vector in the report-text space (model/report_text.py), cached."""
        text = _clean_query(text)
        if text not in self._report_queries:
            if self._report_encoder is None:
                from cmr_search.model.report_text import ReportTextEncoder     # torch + the sentence model
                self._report_encoder = ReportTextEncoder()
            self._report_queries[text] = self._report_encoder.encode_query(text)
            while len(self._report_queries) > QUERY_CACHE:
                self._report_queries.popitem(last=False)
        return self._report_queries[text]

    def _report_queries_for(self, text: str) -> dict[str, np.ndarray]:
        """The report side of a text query: the affirmed report (report_text) and its best clause
        (report_clauses) in the sentence encoder's space, and its words (report_terms, BM25); an older
        index: the model's `report` vector."""
        if not self.store.has_report_text:
            return {"report": self.encode_query(text)}
        vec = self.encode_report_query(text)
        out = {"report_text": vec, "report_clauses": vec}
        if (terms := query_terms(text)) is not None:      # a query of stop words has none
            out["report_terms"] = terms
        return out

    # ---- queries --------------------------------------------------------------------------------
    def search(self, text: str, k: int = 20, filters: Filter | dict | None = None, mode: str = "hybrid",
               view: str = "study") -> pl.DataFrame:
        """Text -> studies. mode: image (the `view` vector: the CMR-CLIP model's zero-shot match), report
        (the report text: RRF of the whole affirmed report, its best clause and BM25 on its words), hybrid
        (all of them, weighted by their measured reliability, plus a ranking by the measurements the
        query names: search/fusion.py, search/measured_terms.py)."""
        _check_choice("mode", mode, MODES)
        _check_choice("view", view, VIEWS)
        text = _clean_query(text)                  # once: a cut query warns once, not once per encoder
        filters = _as_filter(filters)
        if mode == "image":
            return to_frame(self.store.nearest(self.encode_query(text), view, filters, k))
        queries = self._report_queries_for(text)
        if mode == "hybrid":
            queries = {view: self.encode_query(text), **queries}
        if len(queries) == 1:
            (using, vec), = queries.items()
            return to_frame(self.store.nearest(vec, using, filters, k))
        if mode == "hybrid":
            return to_frame(self._hybrid(text, queries, filters, k))
        return to_frame(self.store.fuse(queries, filters, k))

    def _hybrid(self, text: str, queries: dict, filters: Filter | None, k: int) -> list:
        """Weighted RRF of the rankings and of the measurements the query names; plain RRF in the
        engine when every weight is 1 and no measurement is named."""
        k = check_limit(k)                          # the engines' check, before any slicing here
        intents = measured_intents(text) if self.use_measurements else []
        weights = {u: self.image_weight for u in queries if u in IMAGE_VECTORS}
        if not intents and all(w == 1.0 for w in weights.values()):
            return self.store.fuse(queries, filters, k)
        pre = max(100, 4 * k)
        rankings = {u: self.store.nearest(v, u, filters, pre) for u, v in queries.items() if weights.get(u, 1.0) > 0}
        if intents:
            seen = {h.key: h for hits in rankings.values() for h in hits}
            using = next((u for u in ("report_text", "report") if u in queries), next(iter(queries)))
            for h in self.store.nearest(queries[using], using, _with_cuts(filters, intents), pre):
                seen.setdefault(h.key, h)
            rankings["measured"] = rank_by_intents(list(seen.values()), intents)
            weights["measured"] = MEASURED_WEIGHT
        return weighted_rrf(rankings, weights, k)

    @property
    def image_weight(self) -> float:
        """The image ranking's vote in hybrid search, from the checkpoint card's real-data evaluation
        (search/fusion.py); 1.0 for a model handed in or a checkpoint never measured on real studies."""
        if not hasattr(self, "_image_weight"):
            self._image_weight = image_weight(_card_of(self.settings))
        return self._image_weight

    @image_weight.setter
    def image_weight(self, w: float) -> None:
        """Override the measured weight (1.0 with use_measurements False: the engines' plain RRF)."""
        self._image_weight = float(w)

    def similar(self, study, k: int = 10, view: str = "study", filters: Filter | dict | None = None) -> pl.DataFrame:
        """Study -> studies: `study` is a study key (excluded from the result) or an embedding vector."""
        _check_choice("view", view, VIEWS)
        if isinstance(study, str):
            vec, exclude = self.store.vectors_of([study], view)[0], [study]
        else:
            vec, exclude = study, []
        return to_frame(self.store.nearest(vec, view, _as_filter(filters), k, exclude=exclude))

    def reports_for(self, study_key: str, k: int = 5) -> pl.DataFrame:
        """Study -> the nearest report impressions of OTHER studies."""
        vec = self.store.vectors_of([study_key], "study")[0]
        return to_frame(self.store.nearest(vec, "report", None, k, exclude=[study_key]))

    def refine(self, positive: list[str], negative: list[str] = (), k: int = 20, query: str | None = None,
               view: str = "study", filters: Filter | dict | None = None) -> pl.DataFrame:
        """Relevance feedback: studies like `positive` and unlike `negative` (keys, excluded from the result).
        A text `query` joins the positives as one more example."""
        positive, negative = _key_list("positive", positive), _key_list("negative", negative)
        if not positive and query is None:
            raise QueryError("refine needs at least one positive study key or a query.")
        pos = self.store.vectors_of(positive, view) if positive else []
        neg = self.store.vectors_of(negative, view) if negative else []
        if query is not None:
            pos.append(self.encode_query(query))
        hits = self.store.recommend(pos, neg, view, _as_filter(filters), k, exclude=positive + negative)
        return to_frame(hits)

    def label(self, prompt_sets: dict[str, list[str]], filters: Filter | dict | None = None,
              temperature: float = LABEL_TEMPERATURE, write: bool = True, progress=None) -> pl.DataFrame:
        """Zero-shot labels for every study: prompts are encoded once per label (ensemble mean), scored
        against all `study` vectors in one batch; `labels` (the top label) and `label_scores` (softmax over
        the labels) are written to the payload. Returns study_key, label, score and score_<label> per label.
        progress: optional callable(fraction, message), e.g. a progress bar's update."""
        return score_studies(self, prompt_sets, _as_filter(filters), temperature, write, progress)

    def near_duplicates(self, threshold: float = 0.98, k: int = 10, view: str = "study",
                        filters: Filter | dict | None = None) -> pl.DataFrame:
        """Pairs of studies whose `view` vectors have cosine >= threshold (repeat studies of one patient, a
        study imported twice), found by exact kNN of every study (faiss, on the GPU where there is one;
        search/neighbours.py), each pair once, best first: study_key_a, study_key_b, cosine, same_patient.
        Only each study's k nearest are looked at: a NeighboursTruncatedWarning says when that hid pairs."""
        _check_choice("view", view, VIEWS)
        if not -1.0 <= float(threshold) <= 1.0 or int(k) < 1:
            raise QueryError(f"threshold={threshold}, k={k}: a cosine in [-1, 1] and k >= 1, e.g. 0.98 and 10.")
        from .neighbours import near_duplicates
        return near_duplicates(self.store, float(threshold), int(k), view, _as_filter(filters))

    def cohort(self, query: str, k: int = 100, filters: Filter | dict | None = None, mode: str = "hybrid",
               view: str = "study"):
        """A saved query spec + its ranked keys (search/cohort.py)."""
        return Cohort.build(self, query, k, _as_filter(filters), mode, view)

    def info(self) -> dict:
        return self.store.info()


def connect(data: Settings | str | Path | None = None, url: str | None = None, api_key: str | None = None,
            checkpoint: str | Path | None = None, *, model=None, collection: str = DEFAULT_COLLECTION,
            timeout: float | None = None, client=None, insecure: bool = False,
            tls_ca: str | Path | None = None) -> Client:
    """Open the index: embedded in DATA/index/ (default $CMR_DATA or ./cmr-data), or the Qdrant server
    at `url` (default $QDRANT_URL when no data folder is given). `data` may instead be a Settings
    (search/settings.py), which then says all of that; the keywords are a convenience that builds one
    (Settings.for_search). `model`: an already-built model (tests, the indexer) instead of a checkpoint;
    `client`: a qdrant-client object (tests: QdrantClient(':memory:')). A server needs `api_key` (default
    $QDRANT_API_KEY) unless `insecure=True`; `tls_ca`: the PEM bundle of a private CA for an https URL
    (default $QDRANT_TLS_CA)."""
    given = dict(url=url, api_key=api_key, checkpoint=checkpoint, tls_ca=tls_ca, insecure=insecure)
    settings = data.over(**given) if isinstance(data, Settings) else Settings.for_search(
        data=data, server_client=client is not None, **given)
    store = Store.open(settings, collection=collection, timeout=timeout, client=client)
    try:
        return Client(store, settings, model=model)
    except BaseException:
        store.close()
        raise


# ---- helpers --------------------------------------------------------------------------------------
def _load_model(settings: Settings):
    """The query encoder: the first of Settings.resolve_checkpoint(shipped=False); an explicit name that
    is no checkpoint folder is a model config (untrained) or an error (create_model's)."""
    from cmr_search.model import create_model          # torch: only when a query must be encoded
    from cmr_search.model.checkpoint import is_checkpoint_folder
    found, tried = settings.resolve_checkpoint(shipped=False)
    if found is None:
        raise ModelNotFoundError(tried or ["nothing"])
    if is_checkpoint_folder(found):
        return _load_folder(found, settings)
    if not Path(found).exists():                        # explicit: a config name (untrained) or an error
        warnings.warn(f"{found!r} is a model config, not a trained checkpoint: query embeddings "
                      "are only meaningful against an index built by the same weights.")
    return create_model(found)


def _load_folder(folder: str, settings: Settings):
    """A checkpoint folder -> model. Damaged files (truncated weights, garbled JSON) become one clear
    error naming the folder, never a traceback: for DATA/model, the rebuild that writes it again."""
    from cmr_search.model import create_model
    try:
        return create_model(folder)
    except ModelError:
        raise
    except Exception as e:                          # safetensors, json and torch errors of a damaged file
        reason = f"its model files cannot be read: {type(e).__name__}: {' '.join(str(e).split())[:160]}"
        if Path(folder).resolve() == settings.folder.model.resolve():
            raise IndexCorruptError(f"the model saved beside the index at {folder}", reason,
                                    str(settings.data)) from None
        raise CheckpointError(f"checkpoint {folder}: {reason}. Copy or train it again.") from None


def _card_of(settings: Settings) -> dict:
    """card.json of the query model's checkpoint folder ({} when there is none or it cannot be read)."""
    found, _ = settings.resolve_checkpoint(shipped=False)
    try:
        return json.loads((Path(found) / "card.json").read_text()) if found else {}
    except (OSError, ValueError):
        return {}


def _with_cuts(filters: Filter | None, intents) -> Filter:
    """`filters` narrowed by each intent's cut (intents with a fallback field are left to the ranking:
    a study without height and weight has no index to filter on)."""
    fields = dict(filters.fields) if filters is not None else {}
    for i in intents:
        if i.fallback:
            continue
        lo, hi = fields.get(i.field, (None, None))
        if i.high:
            lo = i.cut if lo is None else max(lo, i.cut)
        else:
            hi = i.cut if hi is None else min(hi, i.cut)
        fields[i.field] = (lo, hi)
    return Filter(**fields)


def _key_list(name: str, keys) -> list:
    if not isinstance(keys, (list, tuple)):
        raise QueryError(f"{name}={keys!r}: expected a list of study keys, e.g. {name}=['<study_key>'].")
    return list(keys)


def _clean_query(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query: type what to look for, e.g. 'dilated LV with reduced EF'.")
    # lone surrogates (undecodable bytes in argv) break the tokenizer: they become '?'
    text = " ".join(text.encode("utf-8", "replace").decode("utf-8").split())
    if len(text) > MAX_QUERY_CHARS:
        warnings.warn(f"query of {len(text)} characters cut to {MAX_QUERY_CHARS} (the text model reads "
                      "about 256 tokens).", QueryTruncatedWarning, stacklevel=3)
        text = text[:MAX_QUERY_CHARS]
    return text


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise QueryError(f"{name}={value!r}: choose one of {', '.join(choices)}.")


def _as_filter(filters) -> Filter | None:
    return to_filter(filters)

"""The Python client (architecture.md §5): text -> study, study -> study, study -> report, refine, label.

    from cmr_search.search import connect, Filter
    c = connect("cmr-data", checkpoint="ckpt/")          # or connect(url="http://localhost:6333")
    c = connect(Settings.from_env(data="cmr-data"))      # or with the Settings a command built
    c.search("amyloid LGE pattern", k=20, filters=Filter(sex="F", age=(40, 80)))  # -> polars.DataFrame

Queries: an empty query is an error; a query longer than MAX_QUERY_CHARS is cut to that length with a
QueryTruncatedWarning (the text tower reads at most 256 tokens, about 1,000-1,500 characters, anyway).
The query encoder is loaded once per client, on the first text query (search/query_encoding.py: numpy for
the frozen MiniLM text tower, no torch), and query embeddings are LRU-cached: the checkpoint is
`Settings.resolve_checkpoint(shipped=False)` (explicit, $CMR_CHECKPOINT, DATA/model; never the shipped
one: with none of them, ModelNotFoundError).
"""
from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import polars as pl

from cmr_search.model.errors import CheckpointError, ModelError

from .audit import audited
from .cohort import Cohort
from .collection import DEFAULT_COLLECTION, VIEWS, model_id
from .errors import IndexCorruptError, ModelNotFoundError, QueryError
from .filters import Filter, check_can_match, to_filter
from .fusion import IMAGE_VECTORS, MEASURED_WEIGHT, image_weight, weighted_rrf
from .labeling import Calibration as LabelCalibration, score_studies
from .measured_terms import intent_fields, measured_intents, rank_by_intents
from .query_encoding import (fast_checkpoint, lru_get, prefetch_hybrid, report_encoder,
                             text_encoder as open_text_encoder)
from .results import to_frame
from .settings import Settings
from .store import Hit, Store, check_limit
from .terms import query_terms

MAX_QUERY_CHARS = 2_000
MODES = ("image", "report", "hybrid")
LABEL_TEMPERATURE = 0.01        # uncalibrated softmax temperature of label scores (CLIP's logit scale 100)


class QueryTruncatedWarning(UserWarning):
    """A text query longer than MAX_QUERY_CHARS was cut."""


class Client:
    """An open index and the model that encodes queries: what `connect()` returns; every query returns a
    polars DataFrame (search/results.py). `with connect(...) as c:` closes the index at the end.

        >>> c = connect("cmr-data"); c
        Client(data='cmr-data', backend='embedded', studies=100, model='not loaded (cmr-data/model)')
    """

    def __init__(self, store: Store, settings: Settings | None = None, model=None):
        """`store`: the open index; `settings`: where the model comes from (its checkpoint, else
        $CMR_CHECKPOINT, else DATA/model; default Settings.from_env()); `model`: an already-built model."""
        self.store = store
        self.settings = settings if settings is not None else Settings.from_env()
        self._model = model
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._report_queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._report_encoder = self._text = None
        self.use_measurements = True      # hybrid: rank by the measurements a query names (search/fusion.py)
        if model is not None or self.settings.checkpoint is not None:
            self.text_encoder                              # load now: refuse a wrong size at connect

    def __repr__(self) -> str:
        where = f"url={self.settings.url!r}" if self.settings.url else f"data={str(self.settings.data)!r}"
        try:
            n = self.store.count()
        except Exception:                           # noqa: BLE001  a closed store or a server gone
            n = "?"
        folder = "in memory" if self._model is not None else fast_checkpoint(self.settings) or "resolved on use"
        model = f"{self._text.model_id if self._text is not None else 'not loaded'} ({folder})"
        return (f"Client({where}, backend={getattr(self.store.backend, 'name', '?')!r}, studies={n}, "
                f"model={model!r})")

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the index (a `with` block does it)."""
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

    @property
    def text_encoder(self):
        """Text -> `study`-space vectors (search/query_encoding.py): numpy for the frozen MiniLM tower, else
        the model's torch tower. Loaded once, size-checked. >>> c.text_encoder  # QueryEncoder(cmr-tiny:..., numpy)"""
        if self._text is None:
            enc, checked = open_text_encoder(self._model, self.settings, lambda: self.model)
            if not checked:
                self.store.check_model_dim(enc.embed_dim, f"model {enc.model_id}")
            self._text = enc
        return self._text

    def encode_query(self, text: str) -> np.ndarray:
        """A text query -> its unit `study`-space vector, LRU-cached. >>> c.encode_query("dilated LV").shape"""
        text = _clean_query(text)
        return lru_get(self._queries, text, lambda t: self.text_encoder.encode([t])[0])

    def encode_report_query(self, text: str) -> np.ndarray:
        """A text query -> its report-text-space vector (model/report_text.py's space), LRU-cached; from the
        same MiniLM pass as encode_query where the towers agree."""
        text = _clean_query(text)
        if self._report_encoder is None:
            self._report_encoder = report_encoder()
        return lru_get(self._report_queries, text, self._report_encoder)

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

    # ---- queries (each one a record in the audit trail: search/audit.py) ---------------------------
    @audited("search")
    def search(self, text: str, k: int = 20, filters: Filter | dict | None = None, mode: str = "hybrid",
               view: str = "study") -> pl.DataFrame:
        """Text -> studies. mode: image (the `view` vector: the CMR-CLIP model's zero-shot match), report
        (the report text: RRF of the whole affirmed report, its best clause and BM25 on its words), hybrid
        (all of them, weighted by their measured reliability, plus a ranking by the measurements the
        query names: search/fusion.py, search/measured_terms.py). filters: a Filter or a dict of its fields.

            >>> c.search("amyloid LGE pattern", k=10, filters=Filter(sex="F", age=(40, 80)))
            >>> c.search("scar", mode="image", view="lge", filters={"lvef": (None, 35)})
        """
        _check_choice("mode", mode, MODES)
        _check_choice("view", view, VIEWS)
        text = _clean_query(text)                  # once: a cut query warns once, not once per encoder
        filters = self._filters(filters)
        if mode == "image":
            return to_frame(self.store.nearest(self.encode_query(text), view, filters, k))
        if mode == "hybrid":
            prefetch_hybrid(self, text)             # both spaces from one transformer pass, where they can
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
        fields = intent_fields(intents)             # the rankings carry only what fusion reads; the k fused
        rankings = {u: self.store.nearest(v, u, filters, pre, with_payload=fields)     # hits get their payload
                    for u, v in queries.items() if weights.get(u, 1.0) > 0}
        if intents:
            seen = {h.key: h for hits in rankings.values() for h in hits}
            using = next((u for u in ("report_text", "report") if u in queries), next(iter(queries)))
            for h in self.store.nearest(queries[using], using, _with_cuts(filters, intents), pre, with_payload=fields):
                seen.setdefault(h.key, h)
            rankings["measured"] = rank_by_intents(list(seen.values()), intents)
            weights["measured"] = MEASURED_WEIGHT
        fused = weighted_rrf(rankings, weights, k)
        full = {h.key: h.payload for h in self.store.get([h.key for h in fused])}
        return [Hit(h.id, h.score, full[h.key]) for h in fused]

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

    @audited("similar")
    def similar(self, study, k: int = 10, view: str = "study", filters: Filter | dict | None = None) -> pl.DataFrame:
        """Study -> studies: `study` is a study key (excluded from the result) or an embedding vector.
        >>> c.similar(df["study_key"][0], k=5, view="cine")"""
        _check_choice("view", view, VIEWS)
        if isinstance(study, str):
            vec, exclude = self.store.vectors_of([study], view)[0], [study]
        else:
            vec, exclude = study, []
        return to_frame(self.store.nearest(vec, view, self._filters(filters), k, exclude=exclude))

    @audited("reports_for")
    def reports_for(self, study_key: str, k: int = 5) -> pl.DataFrame:
        """Study -> the nearest report impressions of OTHER studies (their `impression` column).
        >>> c.reports_for(df["study_key"][0], k=3)["impression"].to_list()"""
        vec = self.store.vectors_of([study_key], "study")[0]
        return to_frame(self.store.nearest(vec, "report", None, k, exclude=[study_key]))

    @audited("refine")
    def refine(self, positive: list[str], negative: list[str] = (), k: int = 20, query: str | None = None,
               view: str = "study", filters: Filter | dict | None = None) -> pl.DataFrame:
        """Relevance feedback: studies like `positive` and unlike `negative` (keys, excluded from the result).
        A text `query` joins the positives as one more example.

            >>> keys = df["study_key"].to_list()
            >>> c.refine(positive=keys[:2], negative=keys[2:3], k=10, query="septal hypertrophy")
        """
        positive, negative = _key_list("positive", positive), _key_list("negative", negative)
        if not positive and query is None:
            raise QueryError("refine needs at least one positive study key or a query.")
        pos = self.store.vectors_of(positive, view) if positive else []
        neg = self.store.vectors_of(negative, view) if negative else []
        if query is not None:
            pos.append(self.encode_query(query))
        hits = self.store.recommend(pos, neg, view, self._filters(filters), k, exclude=positive + negative)
        return to_frame(hits)

    @audited("label")
    def label(self, prompt_sets: dict[str, list[str]], filters: Filter | dict | None = None,
              temperature: float | None = None, write: bool = False, progress=None,
              thresholds: dict | None = None) -> pl.DataFrame:
        """Zero-shot labels for every study (search/labeling.py) -> study_key, label (None: unlabelled, under
        its threshold), score (its probability), margin (cosine gap to the runner-up), score_<label>. The
        softmax runs at the temperature fitted for this checkpoint (card "label_calibration"; else 0.01, over-
        confident); `temperature`/`thresholds` override it. write=True stores labels + label_scores in the
        index. progress: optional callable(fraction, message).

            >>> c.label({"amyloid": ["cardiac amyloidosis"], "hcm": ["hypertrophic cardiomyopathy"]})
            >>> c.label(DEFAULT_PROMPTS, write=True)        # what `cmr label --write` does
        """
        cal = self.label_calibration
        if temperature is not None or thresholds is not None:
            cal = LabelCalibration(float(temperature) if temperature is not None else cal.temperature,
                                   dict(thresholds) if thresholds is not None else cal.thresholds, cal.model_id)
        return score_studies(self, prompt_sets, self._filters(filters), cal, write, progress)

    @property
    def label_calibration(self) -> LabelCalibration:
        """The card's label_calibration when it was fitted for this client's model; else the default."""
        if getattr(self, "_label_cal", None) is None:
            card = _card_of(self.settings) if self._model is None else {}
            self._label_cal = LabelCalibration.for_model(card, self.text_encoder.model_id)
        return self._label_cal

    @audited("near_duplicates")
    def near_duplicates(self, threshold: float = 0.98, k: int = 10, view: str = "study",
                        filters: Filter | dict | None = None) -> pl.DataFrame:
        """Pairs of studies whose `view` vectors have cosine >= threshold (repeat studies of one patient, a
        study imported twice), found by exact kNN of every study (faiss, on the GPU where there is one;
        search/neighbours.py), each pair once, best first: study_key_a, study_key_b, cosine, same_patient.
        Only each study's k nearest are looked at: a NeighboursTruncatedWarning says when that hid pairs.

            >>> c.near_duplicates(threshold=0.99)["same_patient"].sum()
        """
        _check_choice("view", view, VIEWS)
        if not -1.0 <= float(threshold) <= 1.0 or int(k) < 1:
            raise QueryError(f"threshold={threshold}, k={k}: a cosine in [-1, 1] and k >= 1, e.g. 0.98 and 10.")
        from .neighbours import near_duplicates
        return near_duplicates(self.store, float(threshold), int(k), view, self._filters(filters))

    @audited("cohort")
    def cohort(self, query: str, k: int = 100, filters: Filter | dict | None = None, mode: str = "hybrid",
               view: str = "study"):
        """A saved query spec + its ranked keys (search/cohort.py): export it, re-run it later.

            >>> co = c.cohort("dilated LV with reduced EF", k=50, filters={"sex": "M"})
            >>> co.export("dcm.csv"); co.save("dcm.cohort.json")    # the rows; the spec to re-run
        """
        return Cohort.build(self, query, k, _as_filter(filters), mode, view)   # search() checks the filters

    def info(self) -> dict:
        """What the index holds: point count, vector size, vectors, where. >>> c.info()["points"]"""
        return self.store.info()

    def _filters(self, filters) -> Filter | None:
        """filters as a Filter (or None); FilterMatchesNothingError for a value no study holds."""
        return check_can_match(_as_filter(filters), self.store)


def connect(data: Settings | str | Path | None = None, url: str | None = None, api_key: str | None = None,
            checkpoint: str | Path | None = None, *, model=None, collection: str = DEFAULT_COLLECTION,
            timeout: float | None = None, client=None, insecure: bool = False,
            tls_ca: str | Path | None = None, untrained: bool = False) -> Client:
    """Open the index: embedded in DATA/index/ (default $CMR_DATA or ./cmr-data), or the Qdrant server
    at `url` (default $QDRANT_URL when no data folder is given). `data` may instead be a Settings
    (search/settings.py), which then says all of that; the keywords are a convenience that builds one
    (Settings.for_search). `model`: an already-built model (tests, the indexer) instead of a checkpoint;
    `client`: a qdrant-client object (tests: QdrantClient(':memory:')). A server needs `api_key` (default
    $QDRANT_API_KEY) unless `insecure=True`; `tls_ca`: the PEM bundle of a private CA for an https URL
    (default $QDRANT_TLS_CA). `checkpoint`: a checkpoint folder, ours or the published CMR-CLIP one; a
    config name (an untrained model) only with `untrained=True`.

        >>> c = connect("cmr-data")                          # DATA/index, queries by DATA/model
        >>> c = connect(url="https://qdrant.example:6333", api_key="...", checkpoint="ckpt/")
        >>> with connect("cmr-data") as c:                   # closes the index at the end
        ...     c.search("dilated LV", k=5)
    """
    given = dict(url=url, api_key=api_key, checkpoint=checkpoint, tls_ca=tls_ca, insecure=insecure,
                 untrained=untrained)
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
    """The query encoder: the first of Settings.resolve_checkpoint(shipped=False), a checkpoint folder of
    either kind; an explicit one that is not is a config name with settings.untrained (the indexer's
    fixed-seed weights) or model_from's error naming what is missing."""
    from cmr_search.model.checkpoint import checkpoint_kind     # torch: only when a query must be encoded
    from cmr_search.model.factory import model_from
    found, tried = settings.resolve_checkpoint(shipped=False)
    if found is None:
        raise ModelNotFoundError(tried or ["nothing"])
    if checkpoint_kind(found):
        return _load_folder(found, settings)
    model = model_from(found, untrained=settings.untrained)
    warnings.warn(f"{found!r} is a model config, not a trained checkpoint: query embeddings "
                  "are only meaningful against an index built by the same weights.")
    return model


def _load_folder(folder: str, settings: Settings):
    """A checkpoint folder -> model. Damaged files (truncated weights, garbled JSON) become one clear
    error naming the folder, never a traceback: for DATA/model, the rebuild that writes it again."""
    from cmr_search.model.checkpoint import load_any
    try:
        return load_any(folder)
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
    found = fast_checkpoint(settings) or settings.resolve_checkpoint(shipped=False)[0]   # the first: no torch
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

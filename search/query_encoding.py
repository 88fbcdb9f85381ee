"""How the client turns query text into vectors (Client.text_encoder, encode_query, encode_report_query).

`text_encoder`: model/query_text.py's numpy QueryEncoder when the checkpoint's text tower is the package's
frozen MiniLM (no torch, no transformers, no video tower: a cold `cmr search` does not build the CMR-CLIP
model), else the model's own torch tower. `report_encoder`: the report-text space (ReportTextEncoder's) in
numpy from the same MiniLM, so that a hybrid query runs the transformer once. Both are cached per string
(`lru_get`, QUERY_CACHE entries each).
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

QUERY_CACHE = 1_024


def lru_get(cache: OrderedDict, key: str, make, size: int = QUERY_CACHE):
    """LRU: a hit moves to the end; past `size` entries the least recently used goes."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = value = make(key)
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def fast_checkpoint(settings) -> str | None:
    """The query model's folder when it is ours (config.json + model.safetensors), for the numpy encoder,
    found as Settings.resolve_checkpoint(shipped=False) finds it (explicit, $CMR_CHECKPOINT, DATA/model: the
    first checkpoint folder) but without importing torch; None for anything else (the torch loader then
    resolves, loads or explains)."""
    if getattr(settings, "untrained", False):
        return None
    for explicit, cand in ((True, settings.checkpoint), (False, settings.env_checkpoint),
                           (False, settings.folder.model)):
        if cand in (None, ""):
            continue
        p = Path(cand)
        if p.is_dir() and (p / "config.json").exists():
            return str(p) if (p / "model.safetensors").exists() else None     # published or odd: torch
        if explicit:
            return None                                                        # a config name: torch
    return None


def text_encoder(model, settings, load_model):
    """-> (encoder, checked): the numpy encoder for `model` (in memory) or the settings' checkpoint, else
    TorchTextEncoder(load_model()); `checked`: False when the caller still has to check its size (the
    torch path's `Client.model` checks its own)."""
    from cmr_search.model.query_text import TorchTextEncoder, query_encoder
    enc = query_encoder(model=model) if model is not None else query_encoder(checkpoint=fast_checkpoint(settings))
    if enc is None:
        return TorchTextEncoder(load_model()), True          # the torch loader: its errors name the folder
    return enc, False


def report_encoder():
    """A callable text -> (dim,) unit vector in the report_text space: numpy MiniLM, else (no tokenizer.json
    or safetensors in the package) the sentence-transformers ReportTextEncoder."""
    try:
        from cmr_search.model.query_text import minilm, report_query
        minilm()                                             # loads (or fails) now, encodes nothing
        return report_query
    except Exception:                                        # noqa: BLE001
        from cmr_search.model.report_text import ReportTextEncoder
        from cmr_search.model.text import quiet_transformers
        quiet_transformers()                                 # no "Loading weights" bars on a query
        return ReportTextEncoder().encode_query


def prefetch_hybrid(client, text: str) -> None:
    """A hybrid query needs the `study` and the report_text vectors of `text`: where both come from the
    same numpy MiniLM, run it once for the two (QueryEncoder.prefetch), before either is asked for."""
    if text in client._queries and text in client._report_queries or not client.store.has_report_text:
        return
    if client._report_encoder is None:
        client._report_encoder = report_encoder()
    enc = client.text_encoder
    from cmr_search.model.query_text import report_query
    if client._report_encoder is report_query and hasattr(enc, "prefetch"):
        enc.prefetch(text)

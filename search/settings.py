"""Settings from the environment: the one object that says where the data is, which model to load and how
to reach a Qdrant server. Command lines and the Python API build one `Settings` and pass it down
(`Store.open(settings)`, `connect(settings)`, `Client(store, settings)`); nothing below them reads these
environment variables again.

Each field is the argument given, else its environment variable, else the default:

    data            --data        $CMR_DATA         ./cmr-data
    checkpoint      --checkpoint                    none (given explicitly only; see below)
    env_checkpoint                $CMR_CHECKPOINT   none
    url             --url         $QDRANT_URL       none: the embedded index in DATA/index
    api_key         --api-key     $QDRANT_API_KEY   none (a server then needs insecure=True)
    tls_ca          --tls-ca      $QDRANT_TLS_CA    none: the system CAs
    insecure        --insecure                      False
    untrained       --untrained                     False (a config name may then stand for a checkpoint)

The rules that tell them apart (kept exactly as the commands have always behaved):

* Checkpoint order (model.checkpoint.resolve_checkpoint, `Settings.resolve_checkpoint`): the explicit
  `checkpoint`, then $CMR_CHECKPOINT, then DATA/model, then (indexer only, `shipped=True`) the checkpoint
  shipped in model/checkpoints/. A checkpoint folder is ours or the published CMR-CLIP one
  (model.checkpoint.checkpoint_kind). Only the explicit one may be a config name, and it builds an
  untrained model only with `untrained` (--untrained; alone it means cmr-tiny); a
  $CMR_CHECKPOINT that is not a checkpoint folder is passed over. That is why $CMR_CHECKPOINT is kept in
  its own field instead of filling `checkpoint`. The search client never falls back to the shipped
  checkpoint: with none of the three it raises ModelNotFoundError.
* Where the index is (`Settings.for_search`, used by Store.open, connect and cmr search / similar / label /
  cohort): a data folder given explicitly means its embedded index; $QDRANT_URL applies only when neither a
  data folder nor a URL (nor a qdrant-client object, in tests) is given. `Settings.from_env` reads
  $QDRANT_URL whatever else is given: that is the rule of `cmr index` and `cmr ui` (`cmr ui --data D` with
  $QDRANT_URL set serves the index on that server, with DATA for the cache and the model).
* The workbench (ui/app/state.py) always opens its data folder's embedded index unless `cmr ui` handed
  it a server URL ($CMR_UI_URL, and $CMR_UI_INSECURE for --insecure).
* A server URL needs an API key unless `insecure` (search/backends/server.py refuses before connecting).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .data_folder import DataFolder

ENV = {"data": "CMR_DATA", "env_checkpoint": "CMR_CHECKPOINT", "url": "QDRANT_URL",
       "api_key": "QDRANT_API_KEY", "tls_ca": "QDRANT_TLS_CA"}
DEFAULT_DATA = "cmr-data"


def _set(v) -> bool:
    return v not in (None, "")


@dataclass(frozen=True)
class Settings:
    data: Path                          # the data folder (index, cache, model, link table)
    checkpoint: str | None = None       # a checkpoint folder or config name given explicitly
    url: str | None = None              # a Qdrant server; None = the embedded index in DATA/index
    api_key: str | None = None          # the server's API key
    tls_ca: str | None = None           # PEM bundle of a private CA for an https server
    insecure: bool = False              # allow a server without an API key
    env_checkpoint: str | None = None   # $CMR_CHECKPOINT: second in the checkpoint order
    untrained: bool = False             # --untrained: a config name builds an untrained model

    def __post_init__(self):
        object.__setattr__(self, "data", Path(self.data))
        for name in ("checkpoint", "tls_ca", "env_checkpoint"):
            v = getattr(self, name)
            object.__setattr__(self, name, str(v) if _set(v) else None)
        for name in ("url", "api_key"):
            if not _set(getattr(self, name)):
                object.__setattr__(self, name, None)
        object.__setattr__(self, "insecure", bool(self.insecure))
        object.__setattr__(self, "untrained", bool(self.untrained))

    # ---- building one ---------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ=None, **given) -> "Settings":
        """Arguments given (None or "" = not given) over the environment over the defaults. `checkpoint`
        is the explicit one only; $CMR_CHECKPOINT goes to `env_checkpoint`."""
        unknown = set(given) - {"data", "checkpoint", "url", "api_key", "tls_ca", "insecure", "untrained"}
        if unknown:
            raise TypeError(f"Settings.from_env: unknown setting(s) {', '.join(sorted(unknown))}")
        env = os.environ if environ is None else environ
        values = {f: given.get(f) if _set(given.get(f)) else (env.get(var) or None) for f, var in ENV.items()}
        return cls(data=values.pop("data") or DEFAULT_DATA, checkpoint=given.get("checkpoint"),
                   insecure=bool(given.get("insecure")), untrained=bool(given.get("untrained")), **values)

    @classmethod
    def for_search(cls, environ=None, *, server_client: bool = False, **given) -> "Settings":
        """`from_env`, except that a data folder given means its embedded index: $QDRANT_URL is read only
        when neither `data` nor `url` is given (nor a qdrant-client object: `server_client`)."""
        s = cls.from_env(environ, **given)
        if not _set(given.get("url")) and (_set(given.get("data")) or server_client):
            s = s.with_(url=None)
        return s

    def with_(self, **changes) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def over(self, **given) -> "Settings":
        """A copy with the values given (None or "" = not given; `insecure` only when True): keyword
        arguments passed beside a Settings (connect(settings, checkpoint=...)); `insecure` and `untrained`
        only when True."""
        changes = {k: v for k, v in given.items() if _set(v) and (k not in ("insecure", "untrained") or v)}
        return replace(self, **changes) if changes else self

    # ---- what follows from them -----------------------------------------------------------------------
    @property
    def folder(self) -> DataFolder:
        """Where each part of the data folder lives."""
        return DataFolder(self.data)

    @property
    def embedded(self) -> bool:
        """True when the index is the embedded one in DATA/index (no server URL)."""
        return self.url is None

    @property
    def missing_api_key(self) -> bool:
        """A server URL without an API key and without `insecure`: refused (backends/server.py)."""
        return self.url is not None and self.api_key is None and not self.insecure

    def checkpoint_candidates(self, shipped: bool = True) -> list[tuple[str, str]]:
        """[(source, path or name)] in THE order (model.checkpoint.checkpoint_candidates)."""
        from cmr_search.model.checkpoint import checkpoint_candidates      # imports torch: only when asked
        return checkpoint_candidates(self.checkpoint, self.folder.model, shipped=shipped,
                                     environ=self.checkpoint_environ)

    def resolve_checkpoint(self, shipped: bool = True) -> tuple[str | None, list[str]]:
        """-> (the checkpoint folder, or explicit config name, to load; None when there is none, everything
        looked at), in THE order (model.checkpoint.resolve_checkpoint). shipped=False: the search client's
        rule (no fallback to the shipped checkpoint)."""
        from cmr_search.model.checkpoint import resolve_checkpoint        # imports torch: only when asked
        return resolve_checkpoint(self.checkpoint, self.folder.model, shipped=shipped,
                                  environ=self.checkpoint_environ, untrained=self.untrained)

    @property
    def checkpoint_environ(self) -> dict:
        """$CMR_CHECKPOINT as these settings read it, for model.checkpoint's resolution."""
        return {"CMR_CHECKPOINT": self.env_checkpoint} if self.env_checkpoint else {}

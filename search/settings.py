"""Settings from the environment: the one object that says where the data is, which model to load and how
to reach a Qdrant server. Command lines and the Python API build one `Settings` and pass it down.

Each field is the argument given, else its environment variable, else the default:

    data        --data        $CMR_DATA         ./cmr-data
    checkpoint  --checkpoint  $CMR_CHECKPOINT   (model.checkpoint.resolve_checkpoint's order)
    url         --url         $QDRANT_URL       none: the embedded index in DATA/index
    api_key     --api-key     $QDRANT_API_KEY   none (a server then needs insecure=True)
    tls_ca      --tls-ca      $QDRANT_TLS_CA    none: the system CAs
    insecure    --insecure                      False
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .data_folder import DataFolder

ENV = {"data": "CMR_DATA", "checkpoint": "CMR_CHECKPOINT", "url": "QDRANT_URL",
       "api_key": "QDRANT_API_KEY", "tls_ca": "QDRANT_TLS_CA"}
DEFAULT_DATA = "cmr-data"


@dataclass(frozen=True)
class Settings:
    data: Path                          # the data folder (index, cache, model, link table)
    checkpoint: str | None = None       # a checkpoint folder or config name given explicitly
    url: str | None = None              # a Qdrant server; None = the embedded index in DATA/index
    api_key: str | None = None          # the server's API key
    tls_ca: str | None = None           # PEM bundle of a private CA for an https server
    insecure: bool = False              # allow a server without an API key

    @classmethod
    def from_env(cls, environ=None, **given) -> "Settings":
        """Arguments given (None = not given) over the environment over the defaults."""
        env = os.environ if environ is None else environ
        values = {f: given.get(f) if given.get(f) not in (None, "") else (env.get(var) or None)
                  for f, var in ENV.items()}
        values["data"] = Path(values["data"] or DEFAULT_DATA)
        values["tls_ca"] = str(values["tls_ca"]) if values["tls_ca"] else None
        values["checkpoint"] = str(values["checkpoint"]) if values["checkpoint"] else None
        return cls(**values, insecure=bool(given.get("insecure")))

    @property
    def folder(self) -> DataFolder:
        """Where each part of the data folder lives."""
        return DataFolder(self.data)

    def with_(self, **changes) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)

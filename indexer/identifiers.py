"""Pseudonymous keys for studies and patients: salted HMAC-SHA256 of the raw identifiers.

The salt is a secret kept outside the repository and outside the cache (default
`$CMR_SALT_FILE` or `~/.config/cmr-search/salt.key`), created once with `os.urandom` and mode 0600.
The same salt gives the same keys, so patients match across archives; losing it breaks re-linking.
Raw identifiers go only into the link table (`link.parquet`), written by cache.py.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

KEY_CHARS = 20                 # hex characters kept from the HMAC (80 bits)
SALT_BYTES = 32


def default_salt_path() -> Path:
    """Where the salt lives unless a --salt-file is given."""
    env = os.environ.get("CMR_SALT_FILE")
    return Path(env) if env else Path.home() / ".config" / "cmr-search" / "salt.key"


def load_or_create_salt(path: str | Path | None = None) -> bytes:
    """Read the salt at `path`, creating it (random, mode 0600) on first use."""
    path = Path(path) if path else default_salt_path()
    if path.exists():
        salt = path.read_bytes()
        if len(salt) < 16:
            from indexer.errors import SaltError
            raise SaltError(f"salt file {path} holds {len(salt)} bytes; expected {SALT_BYTES}. "
                            "Restore it from backup, or delete it to start new keys.")
        return salt
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = os.urandom(SALT_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(salt)
    os.chmod(path, 0o600)
    return salt


def _hmac_hex(kind: str, value: str, salt: bytes) -> str:
    msg = f"{kind}:{value.strip()}".encode()
    return hmac.new(salt, msg, hashlib.sha256).hexdigest()[:KEY_CHARS]


def study_key(uid: str, salt: bytes) -> str:
    """Salted key of a StudyInstanceUID (or any other unique study source string)."""
    return _hmac_hex("study", uid, salt)


def patient_key(patient_id: str, salt: bytes) -> str:
    """Salted key of a PatientID; empty IDs give an empty key (patient unknown)."""
    return _hmac_hex("patient", patient_id, salt) if patient_id.strip() else ""

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
import warnings
from pathlib import Path

from cmr_search.indexer.errors import SaltError

KEY_CHARS = 20                 # hex characters kept from the HMAC (80 bits)
SALT_BYTES = 32
PROJECT_ROOT = Path(__file__).resolve().parents[1]      # the source tree: never a place for the salt


def default_salt_path() -> Path:
    """Where the salt lives unless a --salt-file is given."""
    env = os.environ.get("CMR_SALT_FILE")
    return Path(env) if env else Path.home() / ".config" / "cmr-search" / "salt.key"


def load_or_create_salt(path: str | Path | None = None, not_inside: tuple[str | Path, ...] = ()) -> bytes:
    """Read the salt at `path`, creating it (random, mode 0600) on first use.

    not_inside: folders the salt must not live in (the study cache, which is copied to training
    machines); a new salt is never created inside this project's folder (it could be committed)."""
    path = Path(path) if path else default_salt_path()
    for folder in not_inside:
        if _is_under(path, Path(folder)):
            raise SaltError(f"salt file {path} is inside {folder}, which is shared with the data; move it "
                            f"elsewhere (default {Path.home() / '.config/cmr-search/salt.key'}) and pass "
                            "--salt-file or set CMR_SALT_FILE.")
    if path.exists():
        return _read_salt(path)
    if _is_under(path, PROJECT_ROOT):
        raise SaltError(f"refusing to create the salt file {path} inside the project folder {PROJECT_ROOT} (it "
                        "could be committed); use the default ~/.config/cmr-search/salt.key or a --salt-file / "
                        "CMR_SALT_FILE outside it.")
    return _create_salt(path)


def _read_salt(path: Path) -> bytes:
    try:
        salt = path.read_bytes()
    except OSError as e:
        raise SaltError(f"salt file {path} cannot be read ({e.strerror or e}); fix its permissions "
                        "(chmod 600, owned by you) or restore it from backup.") from None
    if len(salt) < 16:
        raise SaltError(f"salt file {path} holds {len(salt)} bytes; expected {SALT_BYTES}. "
                        "Restore it from backup, or delete it to start new keys (old keys will not match).")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        warnings.warn(f"salt file {path} is readable by other users (mode {path.stat().st_mode & 0o777:o}); "
                      f"run: chmod 600 {path}", stacklevel=3)
    return salt


def _create_salt(path: Path) -> bytes:
    """Write a new random salt atomically: a complete temp file hard-linked into place, so a concurrent
    first run either creates it or reads the one another process made, never a half-written file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    salt = os.urandom(SALT_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(salt)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        _link_new(tmp, path)
    except FileExistsError:                  # another process created it first: use theirs
        return _read_salt(path)
    finally:
        tmp.unlink(missing_ok=True)
    return salt


def _link_new(tmp: Path, path: Path) -> None:
    """Put `tmp` at `path` unless `path` exists (FileExistsError); copies where hard links are refused."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:                          # a file system without hard links
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(tmp.read_bytes())


def _is_under(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents


def _hmac_hex(kind: str, value: str, salt: bytes) -> str:
    msg = f"{kind}:{value.strip()}".encode()
    return hmac.new(salt, msg, hashlib.sha256).hexdigest()[:KEY_CHARS]


def study_key(uid: str, salt: bytes) -> str:
    """Salted key of a StudyInstanceUID (or any other unique study source string)."""
    return _hmac_hex("study", uid, salt)


def patient_key(patient_id: str, salt: bytes) -> str:
    """Salted key of a PatientID; empty IDs give an empty key (patient unknown)."""
    return _hmac_hex("patient", patient_id, salt) if patient_id.strip() else ""

"""Shared helper of the slow phantom tests: one real `tiny` archive per (n, seed, generator source),
generated once into the system temp folder and reused by test_audit and test_class_rules."""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import cmr_search.phantom as phantom
from cmr_search.phantom.generate import generate_archive


def _source_hash() -> str:
    """Short hash of the phantom package source, subpackages included: a changed generator never reuses a
    stale archive."""
    h = hashlib.sha1()
    root = Path(phantom.__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()[:10]


def tiny_archive(n: int = 300, seed: int = 11, workers: int = 2) -> Path:
    """Folder of a generated `tiny` archive of n studies (built on first use, ~2 min on 2 cores)."""
    root = Path(tempfile.gettempdir()) / f"cmr_phantom_tiny_{n}_{seed}_{_source_hash()}"
    done = root / ".complete"
    if not done.exists():
        generate_archive(root, n, "tiny", seed=seed, workers=workers)
        done.write_text("ok\n")
    return root

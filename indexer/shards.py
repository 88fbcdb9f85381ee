"""Shards: `cmr index --shard i/N` keeps the studies whose key hashes to i mod N, so N workers (each with
its own data folder for the cache, all with the same server URL) split an archive without overlap."""
from __future__ import annotations

import hashlib


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

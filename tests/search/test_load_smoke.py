"""The concurrency contract of the embedded store, in small: client threads searching, finding similar
studies and refining share one Client while a writer thread in the same process upserts new studies.
Every call succeeds with well-formed results and the final point count is exact (bench/load.py is the
timed version of this, with 16 threads for 60 s)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from tests.helpers.search_helpers import CLASSES

READERS = 4
ROUNDS = 12                   # each reader makes one call per round; the writer writes one batch per round
WRITE_BATCH = 8


def _new_rows(start: int, n: int, dim: int) -> list[dict]:
    rng = np.random.default_rng(start)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    return [{"study_key": f"new-{start + i:04d}", "vectors": {"study": v / np.linalg.norm(v)},
             "sex": "F", "age": 50.0, "impression": "synthetic study written under load"}
            for i, v in enumerate(vecs)]


def _reader(client, keys: list[str], t: int, rounds: threading.Barrier, errors: list, shapes: list) -> None:
    phrases = list(CLASSES.values())
    for r in range(ROUNDS):
        rounds.wait()                                      # every thread starts its call of round r together
        try:
            kind = (t + r) % 3
            if kind == 0:
                frame = client.search(f"{phrases[r % len(phrases)]} thread {t} round {r}", k=10)
                shapes.append(("search", frame.height, None))
            elif kind == 1:
                key = keys[(t * 7 + r) % len(keys)]
                frame = client.similar(key, k=5)
                shapes.append(("similar", frame.height, key in frame["study_key"].to_list()))
            else:
                pos, neg = keys[(t + r) % len(keys)], keys[(t + r + 11) % len(keys)]
                frame = client.refine([pos], [neg], k=5)
                shapes.append(("refine", frame.height, bool({pos, neg} & set(frame["study_key"]))))
        except Exception as e:                             # any exception is a broken contract
            errors.append(f"reader {t} round {r}: {type(e).__name__}: {e}")


def _writer(store, dim: int, rounds: threading.Barrier, errors: list, written: list) -> None:
    for r in range(ROUNDS):
        rounds.wait()
        try:
            written.append(store.upsert_studies(_new_rows(r * WRITE_BATCH, WRITE_BATCH, dim)))
        except Exception as e:
            errors.append(f"writer round {r}: {type(e).__name__}: {e}")


def test_readers_and_a_writer_share_the_embedded_store(aligned_client, tiny_model):
    client = aligned_client
    n0 = client.store.count()
    keys = [h.key for h in client.store.scroll()]
    rounds = threading.Barrier(READERS + 1, timeout=300)
    errors, shapes, written = [], [], []
    threads = [threading.Thread(target=_reader, args=(client, keys, t, rounds, errors, shapes))
               for t in range(READERS)]
    threads.append(threading.Thread(target=_writer, args=(client.store, tiny_model.embed_dim, rounds,
                                                          errors, written)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(shapes) == READERS * ROUNDS                     # every call returned
    assert all(n > 0 for _, n, _ in shapes)
    assert not any(example_in_result for kind, _, example_in_result in shapes if kind != "search")
    assert sum(written) == ROUNDS * WRITE_BATCH
    assert client.store.count() == n0 + ROUNDS * WRITE_BATCH   # no write lost, none doubled
    new_keys = [f"new-{i:04d}" for i in range(ROUNDS * WRITE_BATCH)]
    assert [h.key for h in client.store.get(new_keys)] == new_keys


def _flushing_writer(store, t: int, rounds: threading.Barrier, errors: list) -> None:
    for r in range(ROUNDS):
        rounds.wait()
        try:
            store.upsert_studies(_new_rows(1000 * (t + 1) + r * WRITE_BATCH, WRITE_BATCH, store.dim))
            store.flush()                                  # as labeling and the indexer do after writing
        except Exception as e:
            errors.append(f"writer {t} round {r}: {type(e).__name__}: {e}")


def test_writers_flushing_at_once_lose_nothing_and_reopen_clean(edge_store, tmp_path):
    """Several threads of one process upserting and flushing together (the check file each flush writes
    was once raced on: a FileNotFoundError for a quarter of concurrent flushes)."""
    from cmr_search.search import Store
    n0 = edge_store.count()
    rounds = threading.Barrier(READERS, timeout=300)
    errors: list = []
    threads = [threading.Thread(target=_flushing_writer, args=(edge_store, t, rounds, errors))
               for t in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = n0 + READERS * ROUNDS * WRITE_BATCH
    assert edge_store.count() == expected
    data = Path(edge_store.backend.dir).parent
    edge_store.close()
    with Store.open(data) as again:                       # no false "damaged" on the next open
        assert again.count() == expected

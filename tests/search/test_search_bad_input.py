"""One test per bad input: each gives a clear error (or, for long queries, a documented truncation)."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cmr_search.search import QueryTruncatedWarning, Store, connect
from cmr_search.search.errors import (EmbedSizeMismatchError, IndexLockedError, QueryError, ServerUnreachableError,
                           StudyNotFoundError, UnknownFilterError)

REPO = Path(__file__).resolve().parents[2]


def test_empty_query(aligned_client):
    for q in ("", "   \n", None):
        with pytest.raises(QueryError, match="empty query"):
            aligned_client.search(q)


def test_ten_thousand_character_query_is_cut_with_a_warning(aligned_client):
    query = ("amyloid " * 1250).strip() + "!"
    assert len(query) == 10_000
    with pytest.warns(QueryTruncatedWarning, match="10000 characters cut to 2000"):
        df = aligned_client.search(query, k=3)
    assert df.height == 3


def test_unknown_filter_field(aligned_client):
    with pytest.raises(UnknownFilterError, match="'gender'; known fields: age, sex"):
        aligned_client.search("scar", filters={"gender": "F"})


def test_study_key_that_does_not_exist(aligned_client):
    with pytest.raises(StudyNotFoundError, match="no study with key 'no-such-study'"):
        aligned_client.similar("no-such-study")


def test_checkpoint_with_another_embedding_size(aligned_client, tmp_path):
    from dataclasses import replace

    from cmr_search.model import save_checkpoint
    from cmr_search.model.model import CMRClip
    cfg = aligned_client.model.cfg
    ckpt = save_checkpoint(CMRClip(replace(cfg, embed_dim=64)), tmp_path / "ckpt64")
    data = Path(aligned_client.store.backend.where).parents[1]
    aligned_client.close()                                        # one process per embedded index
    with pytest.raises(EmbedSizeMismatchError, match=r"holds 256-d vectors but model cmr-tiny:\w+ makes 64-d"):
        connect(data, checkpoint=ckpt)


HOLDER = textwrap.dedent("""
    import sys
    from cmr_search.search import Store
    s = Store.open({data!r}, dim=8)
    print("ready", flush=True)
    sys.stdin.read()
    s.close()
""")


def test_second_writer_on_the_embedded_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CMR_INDEX_WAIT", "1")       # a writer waits its turn that long, then says who holds it
    code = HOLDER.format(repo=str(REPO), data=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(IndexLockedError, match=rf"index is locked by PID {proc.pid} \(started "):
            Store.open(tmp_path, dim=8)
    finally:
        proc.communicate("", timeout=30)
    with Store.open(tmp_path, dim=8) as s:                        # released when the holder exits
        assert s.count() == 0


def test_unreachable_server_fails_with_a_clear_error_instead_of_hanging():
    """The error is raised from inside a worker thread; a hang would leave the thread alive."""
    import threading
    raised = []

    def attempt():
        try:
            connect(url="http://127.0.0.1:9", timeout=2, insecure=True)
        except ServerUnreachableError as e:
            raised.append(str(e))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(60)                                            # a hang guard, not a speed target
    assert not worker.is_alive(), "connect() to an unreachable server hung"
    assert raised and "cannot reach the Qdrant server at http://127.0.0.1:9" in raised[0]

"""The first creation of an embedded index is locked like every later open (issue 22, item 7): two
processes creating the same new store at once -> one creates it, the other waits its turn and opens what
the first made (or, with no wait allowed, gets the usual "index is locked by PID ..." message); never
`Directory not empty`, never a `.creating.*` folder left behind. A dead process's leftover is removed
at the next open."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cmr_search.search import Store
from tests.helpers.search_helpers import make_rows

REPO = Path(__file__).resolve().parents[2]
DIM = 32
TIMEOUT = 180              # a hang guard, not a speed target

# Waits for a line on stdin (both processes are imported and ready: they really race), then creates.
CREATOR = textwrap.dedent("""
    import sys
    from cmr_search.search import Store
    data, write = sys.argv[1], sys.argv[2] == "1"
    print("ready", flush=True)
    sys.stdin.readline()                   # released by the test: both are imported and ready
    try:
        Store.open(data, dim={dim}, write=write).close()
        print("OK", flush=True)
    except Exception as e:
        print(f"ERR {{type(e).__name__}}: {{e}}", flush=True)
""").format(dim=DIM)


def _race(data: Path, writes: tuple[bool, bool], wait: str) -> list[str]:
    """Two creators of `data`'s index released at the same moment; the last line each printed."""
    env = {**os.environ, "CMR_INDEX_WAIT": wait}
    procs = [subprocess.Popen([sys.executable, "-c", CREATOR, str(data), "1" if w else "0"], cwd=REPO, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for w in writes]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.communicate(timeout=TIMEOUT)[1]
    for p in procs:                       # released back to back
        p.stdin.write("go\n")
        p.stdin.flush()
    return [(p.communicate(timeout=TIMEOUT)[0].strip().splitlines() or ["(nothing)"])[-1] for p in procs]


# (write turn taken at open?, CMR_INDEX_WAIT): readers that create (`Store.open(dim=..., write=False)`)
# and writers, each with no wait (the loser gets the locked message) and with a wait (the loser goes on).
RACES = [((False, False), "0"), ((False, False), "60"), ((True, False), "0"), ((False, True), "60"),
         ((True, True), "60")]


@pytest.mark.parametrize("writes,wait", RACES)
def test_two_processes_creating_one_new_index_at_once(tmp_path, writes, wait):
    data = tmp_path / "data"
    results = _race(data, writes, wait)
    assert not any("Directory not empty" in r for r in results), results
    errors = [r for r in results if r != "OK"]
    assert len(errors) <= 1, results
    assert all("index is locked by PID" in e for e in errors), results
    index = data / "index"
    assert not list(index.glob(".*creating*")), sorted(p.name for p in index.iterdir())
    with Store.open(data, dim=DIM) as store:                  # usable afterwards: written and read back
        store.upsert_studies(make_rows(5, dim=DIM))
        store.flush()
    with Store.open(data) as store:
        assert store.count() == 5


@pytest.mark.parametrize("write", [True, False])
def test_a_dead_creators_leftover_is_removed_at_the_next_open(tmp_path, write):
    data = tmp_path / "data"
    Store.open(data, dim=DIM).close()
    stale = data / "index" / ".cmr_studies.creating.99999999"   # above any PID: a process that is gone
    (stale / "segments").mkdir(parents=True)
    (stale / "edge_config.json").write_text("{}")
    with Store.open(data, dim=DIM if write else None):
        pass
    assert not stale.exists()


def test_a_live_creators_folder_is_left_alone(tmp_path):
    """Another process's folder while it lives (it may be creating now) is not touched."""
    data = tmp_path / "data"
    Store.open(data, dim=DIM).close()
    live_process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        live = data / "index" / f".cmr_studies.creating.{live_process.pid}"
        live.mkdir()
        Store.open(data, dim=DIM).close()
        assert live.exists()
    finally:
        live_process.kill()
        live_process.wait()

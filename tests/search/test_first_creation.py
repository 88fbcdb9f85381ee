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
import time
from pathlib import Path

import pytest

from cmr_search.search import Store
from tests.helpers.search_helpers import make_rows

REPO = Path(__file__).resolve().parents[2]
DIM = 32
TIMEOUT = 180              # a hang guard, not a speed target

# Waits for the start file (both processes are imported and ready: they really race), then creates.
CREATOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cmr_search.search import Store
    data, start, write = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
    print("ready", flush=True)
    while not start.exists():
        time.sleep(0.001)
    try:
        Store.open(data, dim={dim}, write=write).close()
        print("OK", flush=True)
    except Exception as e:
        print(f"ERR {{type(e).__name__}}: {{e}}", flush=True)
""").format(dim=DIM)


def _race(data: Path, start: Path, writes: tuple[bool, bool], wait: str) -> list[str]:
    """Two creators of `data`'s index released at the same moment; the last line each printed."""
    env = {**os.environ, "CMR_INDEX_WAIT": wait}
    procs = [subprocess.Popen([sys.executable, "-c", CREATOR, str(data), str(start), "1" if w else "0"],
                              cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for w in writes]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.communicate(timeout=TIMEOUT)[1]
    start.touch()
    return [(p.communicate(timeout=TIMEOUT)[0].strip().splitlines() or ["(nothing)"])[-1] for p in procs]


# (write turn taken at open?, CMR_INDEX_WAIT): readers that create (`Store.open(dim=..., write=False)`)
# and writers, each with no wait (the loser gets the locked message) and with a wait (the loser goes on).
RACES = [((False, False), "0"), ((False, False), "60"), ((True, False), "0"), ((False, True), "60"),
         ((True, True), "60")]


@pytest.mark.parametrize("writes,wait", RACES)
def test_two_processes_creating_one_new_index_at_once(tmp_path, writes, wait):
    data = tmp_path / "data"
    results = _race(data, tmp_path / "start", writes, wait)
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
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = data / "index" / f".cmr_studies.creating.{sleeper.pid}"
        live.mkdir()
        time.sleep(0.1)
        Store.open(data, dim=DIM).close()
        assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()

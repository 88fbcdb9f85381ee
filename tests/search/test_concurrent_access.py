"""Several processes on one embedded index (issue #19): readers in two processes search at once, a writer
and the readers take turns (the writer waits with a message naming the holder, then goes on), and the
readers see what the writer added. Each process below is a real subprocess driving a Store (or the app's
client) through a tiny line protocol on stdin/stdout, so the tests decide who has the index when."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers.app_fixtures import ui_data  # noqa: F401  (the app's data folder, with DATA/model)
REPO = Path(__file__).resolve().parents[2]
DIM = 32
N = 60                     # make_rows()'s default (conftest.edge_template)
TIMEOUT = 120              # a hang guard for each reply, not a speed target

# One command per line; one JSON reply per command. "open" / "open_writer": Store.open without / with dim;
# "search": nearest of make_rows' first study vector; "add a b": upsert make_rows keys a..b-1 as "new-i".
WORKER = textwrap.dedent("""
    import json, sys
    from cmr_search.search import Store
    from tests.helpers.search_helpers import make_rows
    data, store = sys.argv[1], None
    rows = make_rows({n}, dim={dim})
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "open":
            store = Store.open(data)
        elif cmd == "open_writer":
            store = Store.open(data, dim={dim})
        elif cmd == "search":
            hits = store.nearest(rows[0]["vectors"]["study"], limit=5)
            print(json.dumps({{"keys": [h.key for h in hits], "count": store.count()}}), flush=True)
            continue
        elif cmd == "add":
            a, b = int(args[0]), int(args[1])
            store.upsert_studies([dict(r, study_key=f"new-{{i}}") for i, r in zip(range(a, b), rows)])
        elif cmd == "set_label":
            store.set_payload(args[0], {{"labels": [args[1]]}})
        elif cmd == "flush":
            store.flush()
        elif cmd == "close":
            store.close()
        print(json.dumps({{"ok": cmd}}), flush=True)
""").format(n=N, dim=DIM)


class Worker:
    def __init__(self, data: Path, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(data)], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict:
        line = _readline(self.proc.stdout)
        assert line, f"worker {self.proc.pid} ended: {self.finish()}"
        return json.loads(line)

    def do(self, line: str) -> dict:
        self.send(line)
        return self.reply()

    def finish(self) -> str:
        """End the worker (stdin closed: the loop ends, then the interpreter); its stderr."""
        try:
            _, err = self.proc.communicate(timeout=TIMEOUT)
        except ValueError:                       # communicate() already ran
            err = ""
        return err or ""


def _readline(stream) -> str:
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    if not sel.select(TIMEOUT):
        raise AssertionError(f"no reply within {TIMEOUT} s")
    return stream.readline()


@pytest.fixture
def data(tmp_path, edge_template):
    """A closed embedded index of make_rows() (N studies, DIM-d: conftest.edge_template), copied."""
    import shutil
    shutil.copytree(edge_template, tmp_path / "data")
    return tmp_path / "data"


def _copies(data: Path) -> list[str]:
    from cmr_search.search.data_folder import DataFolder
    readers = DataFolder(data).index_readers
    return sorted(p.name for p in readers.iterdir()) if readers.is_dir() else []


def test_two_processes_search_one_folder_at_the_same_time(data):
    a, b = Worker(data), Worker(data)
    try:
        assert a.do("open") == b.do("open") == {"ok": "open"}        # both have it open from here on
        assert len(_copies(data)) == 2                                # each searches its own copy
        a.send("search")
        b.send("search")                                             # both queries in flight at once
        ra, rb = a.reply(), b.reply()
        assert ra == rb and len(ra["keys"]) == 5 and ra["keys"][0] == "s0000" and ra["count"] == N
        for _ in range(3):                                           # and they keep working side by side
            assert a.do("search") == b.do("search") == ra
        a.do("close")
        b.do("close")
    finally:
        a.finish(), b.finish()
    assert _copies(data) == []                                        # a closed reader leaves no copy


def test_a_writer_goes_on_while_a_reader_has_the_index_open_and_the_reader_sees_its_data(data):
    reader = Worker(data)
    try:
        reader.do("open")
        assert reader.do("search")["count"] == N
        writer = subprocess.run([sys.executable, "-c", WRITE_ONCE, str(data)], cwd=REPO, text=True,
                                capture_output=True, timeout=TIMEOUT)
        assert writer.returncode == 0, writer.stderr
        assert "waiting" not in writer.stderr, writer.stderr           # a reader's copy holds nothing
        assert reader.do("search")["count"] == N + 3                  # the next read copies the new index
        reader.do("close")
    finally:
        reader.finish()


WRITE_ONCE = textwrap.dedent(f"""
    import sys
    from cmr_search.search import Store
    from tests.helpers.search_helpers import make_rows
    with Store.open(sys.argv[1], dim={DIM}) as s:
        s.upsert_studies([dict(r, study_key=f"w-{{i}}") for i, r in enumerate(make_rows(3, dim={DIM}))])
""")


def test_a_second_writer_waits_with_a_message_then_goes_on(data):
    first, second, reader = Worker(data), Worker(data), Worker(data)
    try:
        reader.do("open")
        first.do("open_writer")
        first.do("add 0 2")
        second.send("open_writer")                                   # must wait: first has the turn
        deadline = time.monotonic() + TIMEOUT
        while not (data / "index").joinpath("cmr_studies.lock").exists() or not _waiting(second):
            assert time.monotonic() < deadline and second.proc.poll() is None, second.finish()
            select.select([second.proc.stderr], [], [], 1.0)          # until it writes (its wait message)
        assert reader.do("search")["count"] == N                     # readers go on meanwhile (their copy)
        first.do("close")                                            # the turn passes to the second writer
        assert second.reply() == {"ok": "open_writer"}
        second.do("add 2 5")
        second.do("close")
        assert reader.do("search")["count"] == N + 5
        reader.do("close")
    finally:
        for w in (first, reader):
            w.finish()
        err = second.finish() + "".join(second.seen)
    assert f"waiting for PID {first.proc.pid} (python) to release {data / 'index' / 'cmr_studies'}" in err, err
    assert "is free after" in err and "going on" in err, err


def _waiting(worker: Worker) -> bool:
    """Whether the worker's stderr already says it waits (read without blocking, kept in worker.seen)."""
    import fcntl
    worker.seen = getattr(worker, "seen", [])
    fd = worker.proc.stderr.fileno()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    try:
        chunk = os.read(fd, 65536).decode()
    except BlockingIOError:
        chunk = ""
    worker.seen.append(chunk)
    return "waiting for PID" in "".join(worker.seen)


def test_a_writer_that_waits_too_long_names_the_holder(data):
    holder = Worker(data)
    try:
        holder.do("open_writer")
        late = subprocess.run([sys.executable, "-c", WRITE_ONCE, str(data)], cwd=REPO, text=True,
                              capture_output=True, timeout=TIMEOUT, env={**os.environ, "CMR_INDEX_WAIT": "1"})
        assert late.returncode != 0
        assert f"IndexBusyError: index is locked by PID {holder.proc.pid} (started " in late.stderr, late.stderr
        assert "CMR_INDEX_WAIT" in late.stderr and "Qdrant server" in late.stderr
        holder.do("close")
    finally:
        holder.finish()


def test_a_reader_that_writes_takes_the_turn_and_gives_it_back_at_flush(data):
    """`label --write` from a reading process: its writes wait for the turn, and a flush gives it back."""
    labeller, other = Worker(data), Worker(data)
    try:
        labeller.do("open")
        other.do("open")
        labeller.do("set_label s0001 ZZZ")                          # takes the writer's turn
        assert (data / "index" / "cmr_studies.lock").exists()
        labeller.do("flush")                                         # ... and gives it back
        assert not (data / "index" / "cmr_studies.lock").exists()
        writer = subprocess.run([sys.executable, "-c", WRITE_ONCE, str(data)], cwd=REPO, text=True,
                                capture_output=True, timeout=TIMEOUT, env={**os.environ, "CMR_INDEX_WAIT": "5"})
        assert writer.returncode == 0, writer.stderr                 # no wait for the labeller any more
        assert labeller.do("search")["count"] == other.do("search")["count"] == N + 3
        for w in (labeller, other):
            w.do("close")
    finally:
        labeller.finish(), other.finish()
    from cmr_search.search import Filter, Store
    with Store.open(data) as s:
        assert [h.key for h in s.scroll(Filter(labels=["ZZZ"]))] == ["s0001"]


def test_a_killed_writer_and_a_killed_reader_leave_the_index_usable(data):
    writer, reader = Worker(data), Worker(data)
    reader.do("open")                                               # a copy made before the writer came
    writer.do("open_writer")
    writer.do("add 0 4")
    writer.do("flush")
    assert _copies(data)
    for w in (writer, reader):
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(TIMEOUT)
        w.finish()
    done = subprocess.run([sys.executable, "-c", WRITE_ONCE, str(data)], cwd=REPO, text=True,
                          capture_output=True, timeout=TIMEOUT, env={**os.environ, "CMR_INDEX_WAIT": "5"})
    assert done.returncode == 0 and "waiting" not in done.stderr, done.stderr   # the kernel freed the turn
    from cmr_search.search import Store
    with Store.open(data) as s:
        assert s.count() == N + 4 + 3                               # nothing the killed writer flushed is lost
        assert _copies(data) == [p for p in _copies(data) if p.split(".")[1] == str(os.getpid())]
    assert _copies(data) == []                                      # the dead reader's copy is gone


APP_CLIENT = textwrap.dedent("""
    import json, os, sys
    os.environ["CMR_DATA"] = sys.argv[1]
    from cmr_search.ui.app import state                    # the workbench's own way to its client
    client = state.client()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    df = client.search("dilated left ventricle", k=5)
    print(json.dumps({"keys": df["study_key"].to_list()}), flush=True)
    sys.stdin.readline()
""")

NOTEBOOK = textwrap.dedent("""
    import json, sys
    from cmr_search.search import connect
    client = connect(sys.argv[1])                           # a Python session: DATA/model encodes the query
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    df = client.search("dilated left ventricle", k=5)
    print(json.dumps({"keys": df["study_key"].to_list()}), flush=True)
    sys.stdin.readline()
    client.close()
""")


@pytest.mark.slow
def test_the_workbench_client_and_a_python_session_on_one_folder(ui_data, tmp_path):  # noqa: F811
    import shutil
    data = tmp_path / "data"
    shutil.copytree(ui_data, data)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(data)], cwd=REPO, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for code in (APP_CLIENT, NOTEBOOK)]
    try:
        for p in procs:                                              # both have the index open
            line = _readline(p.stdout)
            assert json.loads(line or "{}") == {"ready": True}, p.communicate(timeout=TIMEOUT)[1][-3000:]
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            line = _readline(p.stdout)
            assert line, p.communicate(timeout=TIMEOUT)[1][-3000:]
            results.append(json.loads(line)["keys"])
        assert len(results[0]) == 5 and results[0] == results[1]    # the same index, the same model
    finally:
        for p in procs:
            _, err = p.communicate("\n", timeout=TIMEOUT)
            assert p.returncode == 0, err[-3000:]

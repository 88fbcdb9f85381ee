"""model.atomic: the one atomic-write helper, and telling a dead writer's temp file from a live one's."""
import os
import subprocess

import pytest

from cmr_search.model.atomic import atomic_write, pid_alive, stale_temps, temp_path


def test_atomic_write_bytes_text_and_a_writer_function(tmp_path):
    atomic_write(tmp_path / "a.bin", b"\x00\x01")
    atomic_write(tmp_path / "b.txt", "héllo")
    atomic_write(tmp_path / "c.txt", lambda p: p.write_text("from a writer"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text() == "héllo"
    assert (tmp_path / "c.txt").read_text() == "from a writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.txt"]     # no temp left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "state.json"
    atomic_write(target, "old")

    def broken(p):
        p.write_text("half")
        raise OSError("disk went away")
    with pytest.raises(OSError, match="disk went away"):
        atomic_write(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_stale_temps_are_those_of_dead_or_zombie_writers(tmp_path):
    proc = subprocess.Popen(["sleep", "30"])
    live = tmp_path / f".x.npz.{proc.pid}.tmp"
    live.write_bytes(b"")
    mine = temp_path(tmp_path / "y.npz")
    mine.write_bytes(b"")
    try:
        assert pid_alive(proc.pid) and stale_temps(tmp_path) == []
        proc.kill()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)    # it has exited; not reaped: a zombie
        assert not pid_alive(proc.pid) and stale_temps(tmp_path) == [live]
    finally:
        proc.kill()
        proc.wait()
    assert stale_temps(tmp_path) == [live] and pid_alive(os.getpid())

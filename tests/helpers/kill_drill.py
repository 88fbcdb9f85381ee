"""kill -9 drills: run a `cmr` command as a real process group, SIGKILL it at a seeded random point, and say
exactly where, so that a failing trial can be replayed (tests/indexer/test_kill_drills.py,
tests/model/test_train_kill_drill.py).

A kill point is a progress condition polled on the job's files or stderr (e.g. "k arrays written",
"k metrics lines"), optionally followed by a short random delay, or a plain random delay from the start.
The drill seed is $CMR_DRILL_SEED (default 0); trial i draws from random.Random(f"{seed}:{name}:{i}").
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
TRIALS = 6                           # kills per drill (10 until CI neared its 30 minutes; seeded, replayable)
DEADLINE_S = 300                     # hang guard: a job still short of its kill point by then is killed there


def drill_seed() -> int:
    return int(os.environ.get("CMR_DRILL_SEED", "0"))


def trial_rng(name: str, trial: int) -> random.Random:
    return random.Random(f"{drill_seed()}:{name}:{trial}")


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Job:
    """`python -m cmr_search.ui.cli ARGS` in its own process group, its stderr collected line by line."""
    args: list[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "cmr_search.ui.cli", *self.args], cwd=REPO, env=cli_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def wait_until(self, condition: Callable[[], bool]) -> bool:
        """Check `condition` each time the job has had 5 ms to exit (waiting on the process itself):
        True once it holds; False if the job ends first, or is still short of it after DEADLINE_S
        (a hang guard: the caller kills the job either way, and the re-run checks still apply)."""
        while not condition():
            if self.elapsed > DEADLINE_S:
                return False
            try:
                self.proc.wait(timeout=0.005)
                return condition()
            except subprocess.TimeoutExpired:
                pass
        return True

    def kill(self) -> bool:
        """SIGKILL the whole process group (the command and any workers); True if it was still running."""
        running = self.proc.poll() is None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._reader.join(timeout=10)
        return running

    def tail(self, n: int = 15) -> str:
        return "".join(self.lines[-n:])


def kill_at(job: Job, rng: random.Random, progress: Callable[[], int], total: int,
            max_delay_s: float) -> str:
    """Kill `job` at a random point: after `progress()` reaches a random k in 1..total-1 (plus a random
    0-0.3 s), or after a random delay up to max_delay_s. Returns a description of the point."""
    if rng.random() < 0.7:
        k, extra = rng.randint(1, total - 1), rng.uniform(0, 0.3)
        job.wait_until(lambda: progress() >= k)
        t_k = job.elapsed
        job.wait_until(lambda: job.elapsed >= t_k + extra)
        point = f"progress>={k} +{extra:.2f}s"
    else:
        delay = rng.uniform(0.2, max_delay_s)
        job.wait_until(lambda: job.elapsed >= delay)
        point = f"delay {delay:.2f}s"
    at = job.elapsed
    running = job.kill()
    return f"{point} (killed at {at:.2f}s, {'mid-run' if running else 'after it had finished'})"

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_cpu_processes_stay_in_sync(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "tests.helpers.ddp_worker", str(tmp_path / "run")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    # both ranks print to one pipe: their lines may interleave, so find the reports anywhere
    lines = sorted(re.findall(r"RANK \d WORLD \d STEPS \d+ SYNC (?:True|False)", r.stdout))
    assert lines == ["RANK 0 WORLD 2 STEPS 4 SYNC True", "RANK 1 WORLD 2 STEPS 4 SYNC True"]
    assert {p.name for p in (tmp_path / "run" / "last").iterdir()} == {"state.pt", "rng1.pt"}   # rank 0: RNG inside state.pt
    assert (tmp_path / "run" / "final" / "model.safetensors").exists()

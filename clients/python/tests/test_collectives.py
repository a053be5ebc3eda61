"""A collective made on one rank only: two gloo processes against a real server.

``report_losses`` and ``update_mixture`` are collectives under ``torch.distributed``. A loop that
makes one on rank 0 only (``if rank == 0: ds.report_losses(...)``) blocked rank 0 inside gloo
until the process group's timeout (30 min by default) with an error that never named flanstream.
Now rank 0 raises within ``collective_timeout``, naming the call and saying every rank must make
it; ranks that do make it are unaffected (test_closed_loop.py, test_distributed.py).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from conftest import CLIENT_ROOT

WORKER = r"""
import json, sys, time
import torch.distributed as dist
from flanstream import FlanStreamDataset
rank, call = int(sys.argv[1]), sys.argv[4]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{sys.argv[2]}", rank=rank, world_size=2)
mix = {"weights": {"speech": 1.0, "music": 1.0, "audio": 1.0}, "policy": "excess-loss", "lag_steps": 2,
       "reference": {"speech": 1.0, "music": 1.0, "audio": 1.0}}
ds = FlanStreamDataset(sys.argv[3], batch_size=2, seq_len=1024, mixture=mix, seed=2, output="numpy",
                       collective_timeout=3)
step = next(iter(ds))["step"]
started = time.monotonic()
if rank == 0:  # the mistake under test: only rank 0 makes the call
    try:
        if call == "report_losses":
            ds.report_losses(step, {0: (1.0, 1)})
        else:
            ds.update_mixture({"speech": 2.0, "music": 1.0, "audio": 1.0}, at_step=step + 5)
        print(json.dumps({"error": None}))
    except RuntimeError as e:
        print(json.dumps({"error": str(e), "after": time.monotonic() - started}))
else:
    time.sleep(8)  # busy elsewhere, longer than rank 0's collective_timeout
    print(json.dumps({"error": None}))
"""


@pytest.mark.parametrize("call", ["report_losses", "update_mixture"])
def test_a_collective_on_one_rank_raises_naming_the_call(server, call: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {"PYTHONPATH": str(CLIENT_ROOT), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(r), port, server.target, call], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=90)
            assert p.returncode == 0, err[-3000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            p.kill()
    error = outs[0]["error"]
    assert error is not None, "rank 0's lone collective returned"
    assert f"{call}() on rank 0 waited 3 s" in error and "1 of 2 made this call" in error
    assert "every rank must call it" in error
    assert outs[0]["after"] < 8  # bounded by collective_timeout, not by the other rank's exit

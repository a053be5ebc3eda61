"""torch.distributed integration: rank/world_size defaults and the update_mixture broadcast."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT_ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, os, sys
import torch.distributed as dist
from flanstream import FlanStreamDataset
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{sys.argv[2]}", rank=rank, world_size=2)
ds = FlanStreamDataset(sys.argv[3], batch_size=2, seq_len=16, output="numpy")
# every rank passes different arguments; rank 0's win
ds.update_mixture({"speech": float(rank + 1)}, at_step=5 + rank, within="uniform" if rank == 0 else None, merge=False)
it = iter(ds)
steps = [next(it)["step"] for _ in range(7)]
print(json.dumps({"rank": ds.rank, "world": ds.world_size, "pending": ds.state_dict()["pending_updates"],
                  "first": ds.spec.rank, "target": next(it)["stats"]["domains"]["speech"]["target"], "steps": steps}))
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_default_from_torch_distributed_and_updates_are_broadcast(fake_server) -> None:
    pytest.importorskip("torch.distributed")
    port = str(_free_port())
    env = {"PYTHONPATH": str(CLIENT_ROOT), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(r), port, fake_server.target], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert [(o["rank"], o["world"], o["first"]) for o in outs] == [(0, 2, 0), (1, 2, 1)]
    for o in outs:
        assert o["steps"] == list(range(7))
        assert o["target"] == pytest.approx(1.0)  # rank 0's {"speech": 1.0} from step 5 on, on both ranks
    updates = [u.apply_at_step for r in fake_server.service.first_requests for u in r.updates]
    assert set(updates) == {5}

"""The runnable examples, shortened, against the real server."""
from __future__ import annotations

import importlib.util
import math

from conftest import CLIENT_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, CLIENT_ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_online_reweighting_moves_the_weights_and_the_server_follows(server) -> None:
    example = _load("online_reweighting")
    trajectory = example.run(server.target, steps=24, every=8, batch_size=2, seq_len=1024, eta=2.0)
    assert sorted(trajectory) == [0, 8, 16]          # the start and the updates at steps 8 and 16
    for step, entry in trajectory.items():
        sent, served = entry["sent"], entry["served"]
        assert math.isclose(sum(sent.values()), 1.0, rel_tol=1e-9)
        assert min(sent.values()) >= 0.1 / 3 - 1e-12  # the uniform floor holds
        for d in sent:                                # the server switched at exactly that step
            assert math.isclose(served[d], sent[d], rel_tol=1e-9, abs_tol=1e-12), (step, d)
    assert trajectory[8]["sent"] != trajectory[0]["sent"] and trajectory[16]["sent"] != trajectory[8]["sent"]

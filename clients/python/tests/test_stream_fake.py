"""Streaming, prefetch, checkpointing, re-weighting and failover against an in-process fake server."""
from __future__ import annotations

import time
from typing import Any, Dict, List

import grpc
import numpy as np
import pytest

from flanstream import FlanStreamDataset, FlanStreamError, RetryPolicy

FAST = RetryPolicy(attempts=4, initial_backoff=0.01, max_backoff=0.05)


def make(target: Any, **kw: Any) -> FlanStreamDataset:
    args: Dict[str, Any] = dict(batch_size=2, seq_len=16, output="numpy", retry=FAST)
    args.update(kw)
    return FlanStreamDataset(target, **args)


def take(ds: FlanStreamDataset, n: int) -> List[Dict[str, Any]]:
    it = iter(ds)
    return [next(it) for _ in range(n)]


def same(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    keys = ("input_ids", "labels", "position_ids", "segment_ids", "cu_seqlens")
    return all(np.array_equal(a[k], b[k]) for k in keys) and a["step"] == b["step"] and \
        a["resume_token"] == b["resume_token"] and a["segments"] == b["segments"]


def test_iterates_and_names_tasks(fake_server) -> None:
    batches = take(make(fake_server.target), 3)
    assert [b["step"] for b in batches] == [0, 1, 2]
    assert batches[0]["segments"][0]["task"] == "speech/Speech Recognition/ASR"
    assert batches[0]["stats"]["domains"]["speech"]["target"] == pytest.approx(1 / 3)


def test_max_batches_ends_iteration(fake_server) -> None:
    ds = make(fake_server.target, max_batches=3)
    assert [b["step"] for b in ds] == [0, 1, 2]
    assert ds.summary is not None and ds.summary["reason"] == "max_batches"
    assert [b["step"] for b in ds] == [3, 4, 5]  # the next loop continues the stream
    assert fake_server.service.first_requests[-1].resume.max_batches == 3


def test_state_dict_is_last_handed_out_not_prefetched(fake_server) -> None:
    ds = make(fake_server.target, prefetch=4)
    it = iter(ds)
    first = [next(it), next(it)]
    deadline = time.monotonic() + 20
    while ds._conn.buffered() < 2 and time.monotonic() < deadline:  # let the prefetcher run ahead
        time.sleep(0.01)
    assert ds._conn.buffered() >= 2
    state = ds.state_dict()
    assert state["resume_token"] == first[1]["resume_token"] and state["step"] == 1
    rest = [next(it) for _ in range(3)]
    ds2 = make(fake_server.target)
    ds2.load_state_dict(state)
    again = take(ds2, 3)
    assert all(same(a, b) for a, b in zip(rest, again))
    assert fake_server.service.first_requests[-1].WhichOneof("kind") == "resume"


def test_update_mixture_restarts_exactly(fake_server) -> None:
    ds = make(fake_server.target, prefetch=4)
    it = iter(ds)
    got = [next(it) for _ in range(2)]
    time.sleep(0.2)
    with pytest.raises(ValueError):
        ds.update_mixture({"speech": 1.0}, at_step=1)
    ds.update_mixture({"speech": 1.0, "music": 0.0, "audio": 0.0}, at_step=4)
    assert ds.state_dict()["pending_updates"][0]["at_step"] == 4
    got += [next(it) for _ in range(5)]
    assert [b["step"] for b in got] == list(range(7))
    for b in got:
        want = 1.0 if b["step"] >= 4 else 1 / 3
        assert b["stats"]["domains"]["speech"]["target"] == pytest.approx(want)
    req = fake_server.service.first_requests[-1]
    assert req.WhichOneof("kind") == "resume" and [u.apply_at_step for u in req.updates] == [4]
    assert ds.state_dict()["pending_updates"] == []  # applied: carried by the token now
    # the same update given before the start yields the same stream
    ds2 = make(fake_server.target)
    ds2.update_mixture({"speech": 1.0, "music": 0.0, "audio": 0.0}, at_step=4)
    assert all(same(a, b) for a, b in zip(got, take(ds2, 7)))


def test_server_error_is_raised_promptly(fake_server) -> None:
    t0 = time.monotonic()
    with pytest.raises(FlanStreamError) as info:
        take(make(fake_server.target, seed=666), 1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "spec.seed" in info.value.details
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("mode", ["fail_after", "shutdown_after"])
def test_failover_continues_exactly(fake_server_factory, mode: str) -> None:
    a, b = fake_server_factory(), fake_server_factory()
    reference = take(make(b.target), 8)
    setattr(a.service, mode, 3)
    ds = make([a.target, b.target], prefetch=2)
    got = take(ds, 8)
    assert all(same(x, y) for x, y in zip(got, reference))
    assert ds.target == b.target and b.service.first_requests[-1].WhichOneof("kind") == "resume"


def test_failover_when_a_server_dies(fake_server_factory) -> None:
    a, b = fake_server_factory(), fake_server_factory()
    reference = take(make(b.target), 10)
    ds = make([a.target, b.target], prefetch=2)
    it = iter(ds)
    got = [next(it) for _ in range(3)]
    a.stop(0)
    got += [next(it) for _ in range(7)]
    assert all(same(x, y) for x, y in zip(got, reference))


def test_gives_up_after_bounded_attempts() -> None:
    ds = make("127.0.0.1:1", retry=RetryPolicy(attempts=2, initial_backoff=0.01, max_backoff=0.01))
    with pytest.raises(FlanStreamError) as info:
        take(ds, 1)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and "gave up" in info.value.details


def test_finite_stream_summary_and_restart(fake_server) -> None:
    ds = make(fake_server.target, split="test")
    assert [b["step"] for b in ds] == [0, 1, 2]
    assert ds.summary["reason"] == "complete" and ds.summary["total_examples"] == 3
    assert ds.summary["task_examples"] == {"speech/Speech Recognition/ASR": 1, "music/Genre/Genre Classification": 2}
    assert [b["step"] for b in ds] == [0, 1, 2]  # a completed evaluation stream starts over


def test_dataloader(fake_server) -> None:
    torch = pytest.importorskip("torch")
    ds = make(fake_server.target, output="torch", max_batches=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=None)
    batches = list(loader)
    assert len(batches) == 3 and batches[0]["input_ids"].dtype == torch.int64
    assert isinstance(ds, torch.utils.data.IterableDataset)
    assert ds.state_dict()["step"] == 2


def test_iterating_in_one_of_several_workers_is_refused(fake_server, monkeypatch) -> None:
    # What DataLoader(num_workers=2) would do in each worker process, without forking (grpc and
    # fork do not mix well in a test process).
    import types

    import flanstream.distributed as fd

    monkeypatch.setattr(fd, "_get_worker_info", lambda: types.SimpleNamespace(num_workers=2, id=0))
    with pytest.raises(RuntimeError, match="num_workers"):
        iter(make(fake_server.target))


def test_breaking_out_closes_the_stream(fake_server) -> None:
    ds = make(fake_server.target)
    for b in ds:
        if b["step"] == 2:
            break
    assert ds._conn is None and ds.state_dict()["step"] == 2
    assert next(iter(ds))["step"] == 3


EXIT_SCRIPT = r"""
import sys
from flanstream import FlanStreamDataset
ds = FlanStreamDataset(sys.argv[1], batch_size=2, seq_len=16, output="numpy", prefetch=2)
it = iter(ds)  # left open on purpose: the stream is still running at interpreter exit
print([next(it)["step"] for _ in range(3)], flush=True)
"""


def test_process_exits_with_a_stream_still_open(fake_server) -> None:
    import subprocess
    import sys
    from pathlib import Path

    for _ in range(3):  # exit-time hangs in gRPC were intermittent
        proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, fake_server.target], capture_output=True, text=True,
                              env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PYTHONDONTWRITEBYTECODE": "1"}, timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip() == "[0, 1, 2]", proc.stderr[-2000:]

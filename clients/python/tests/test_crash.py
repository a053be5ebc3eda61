"""Reliability (issue 8.1): a server SIGKILLed mid-stream again and again, restarted, and the
Python client's concatenated batches equal an uninterrupted run byte for byte.

Two recovery paths alternate:

* ``same-port``: the server is killed from another thread at a random moment while batches are
  in flight and restarted on the same port; the *same* ``FlanStreamDataset`` notices the broken
  call (UNAVAILABLE), backs off and reconnects with the token of the last batch handed out.
* ``new-port``: the server is killed right after a batch was handed out (more are in flight)
  and restarted on another port; a *new* dataset is built for the new address and continues from
  the old one's ``state_dict()``.
"""
from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any, List

import numpy as np

from conftest import ServerProcess
from flanstream import FlanStreamDataset
from flanstream._stream import RetryPolicy

N_BATCHES = 90
KILLS = 12
SPEC = dict(split="train", batch_size=4, seq_len=1024, packing="packed", seed=5, output="numpy")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _canonical(v: Any, out: List[bytes]) -> None:
    """Every byte of a decoded batch, in a fixed order (dict keys sorted)."""
    if isinstance(v, np.ndarray):
        out.append(f"nd{v.dtype.str}{v.shape}".encode())
        out.append(np.ascontiguousarray(v).tobytes())
    elif hasattr(v, "numpy") and hasattr(v, "dtype"):  # a torch tensor
        _canonical(v.numpy(), out)
    elif isinstance(v, dict):
        out.append(b"{")
        for k in sorted(v):
            out.append(repr(k).encode())
            _canonical(v[k], out)
        out.append(b"}")
    elif isinstance(v, (list, tuple)):
        out.append(b"[")
        for x in v:
            _canonical(x, out)
        out.append(b"]")
    elif isinstance(v, (bytes, bytearray)):
        out.append(b"b" + bytes(v))
    else:
        out.append(repr(v).encode())


def _digest(batch: Any) -> "tuple[str, int]":
    parts: List[bytes] = []
    _canonical(batch, parts)
    blob = b"".join(parts)
    return hashlib.sha256(blob).hexdigest(), len(blob)


def _retry() -> RetryPolicy:
    return RetryPolicy(attempts=200, initial_backoff=0.05, max_backoff=0.4)


def test_sigkill_restart_loop_is_byte_identical(server, index_dir: Path, tmp_path: Path) -> None:
    # Reference: one uninterrupted run on the session server.
    ref_ds = FlanStreamDataset(server.target, max_batches=N_BATCHES, **SPEC)
    ref = [_digest(b) for b in ref_ds]
    ref_ds.close()
    assert len(ref) == N_BATCHES

    rnd = random.Random(20261126)
    holder: dict = {}
    lock = threading.Lock()
    holder["port"] = _free_port()
    holder["srv"] = ServerProcess(index_dir, tmp_path, ["--port", str(holder["port"])])
    kills: List[str] = []
    restarts: List[threading.Thread] = []

    def kill_and_restart(delay: float, same_port: bool) -> None:
        time.sleep(delay)
        with lock:
            holder["srv"].kill()                # SIGKILL: a crash, batches in flight
            kills.append("same-port" if same_port else "new-port")
            if not same_port:
                holder["port"] = _free_port()
            holder["srv"] = ServerProcess(index_dir, tmp_path, ["--port", str(holder["port"])])

    got: List["tuple[str, int]"] = []
    steps: List[int] = []
    ds = FlanStreamDataset(holder["srv"].target, retry=_retry(), prefetch=4, **SPEC)
    try:
        next_kill = rnd.randint(3, 8)
        scheduled = 0
        it = iter(ds)
        while len(got) < N_BATCHES:
            b = next(it)
            got.append(_digest(b))
            steps.append(int(b["step"]))
            if len(got) == next_kill and scheduled < KILLS:
                next_kill += rnd.randint(3, 8)
                scheduled += 1
                same_port = rnd.random() < 0.5
                if same_port:
                    # Kill from another thread at a random moment while this loop keeps reading.
                    t = threading.Thread(target=kill_and_restart, args=(rnd.uniform(0.0, 0.08), True), daemon=True)
                    restarts.append(t)
                    t.start()
                else:
                    for t in restarts:
                        t.join()
                    restarts.clear()
                    state = ds.state_dict()
                    kill_and_restart(0.0, False)
                    ds.close()
                    ds = FlanStreamDataset(holder["srv"].target, retry=_retry(), prefetch=4, **SPEC)
                    ds.load_state_dict(state)
                    it = iter(ds)
        for t in restarts:
            t.join()
    finally:
        ds.close()
        with lock:
            holder["srv"].terminate()

    assert len(kills) >= 10, kills
    assert steps == list(range(N_BATCHES))
    assert [d for d, _ in got] == [d for d, _ in ref]
    total = sum(n for _, n in got)
    print(f"\ncrash: {len(kills)} SIGKILLs ({kills.count('same-port')} same-port, {kills.count('new-port')} new-port), "
          f"{N_BATCHES} batches, {total} canonical bytes compared")

"""Reconnecting after a short outage: a real server SIGKILLed, restarted on the same port 3 s
later, and a dataset with the default retry policy reading across it.

The first retries come fast (the client's own schedule, and gRPC's channel reconnect backoff,
which would otherwise wait 1, 1.6, 2.6, 4.2 … s between connection attempts), so the training
loop gets its next batch about a second after the replacement listens, not 10 s later.
"""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import List, Tuple

from conftest import ServerProcess
from flanstream import FlanStreamDataset
from flanstream._stream import RetryPolicy

OUTAGE_S = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_3_s_restart_costs_about_a_second_more(index_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    old = ServerProcess(index_dir, tmp_path, ["--port", str(port)])
    ds = FlanStreamDataset(old.target, split="train", batch_size=2, seq_len=1024, seed=3, prefetch=2,
                           output="numpy", retry=RetryPolicy())  # the default schedule is what is tested
    arrivals: List[Tuple[int, float]] = []
    it = iter(ds)
    for _ in range(3):
        arrivals.append((next(it)["step"], time.monotonic()))
    done = threading.Event()

    def read() -> None:
        while not done.is_set() and len(arrivals) < 40:
            arrivals.append((next(it)["step"], time.monotonic()))

    new = None
    try:
        old.kill()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(OUTAGE_S)
        new = ServerProcess(index_dir, tmp_path, ["--port", str(port)])
        listening = time.monotonic()
        reader.join(60)
        assert not reader.is_alive(), f"no batch 60 s after the restart: {arrivals[-1]}"
        steps = [s for s, _ in arrivals]
        assert steps == list(range(len(steps)))  # resumed exactly where it stopped
        after = [t for _, t in arrivals if t > listening]
        assert after, "every batch arrived before the replacement listened"
        stall = after[0] - listening
        assert stall < 2.0, f"first batch {stall:.2f} s after the replacement listened (slow reconnect schedule)"
    finally:
        done.set()
        ds.close()
        old.kill()
        if new is not None:
            new.terminate()

"""SIGTERM drain with real, slow readers: a real ``flanstream serve`` process (with and without
build workers) and the Python client under real grpcio.

Readers that take 0.2 s and 1 s per batch (a training step) hold many batches in flight: the
prefetch queue plus what gRPC buffered. At SIGTERM the server builds nothing more, releases its
port at once (a replacement binds it during the grace) and ends every stream with
``StreamEnd(reason="shutdown")`` carrying the token of the last batch sent; the client reads
that end as soon as the server announced its shutdown, so the old process exits well within its
grace, and each reader, at its own pace, gets every batch and then the end, whose token resumes
exactly after the last batch it received.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

from conftest import ServerProcess
from flanstream import Client
from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
from flanstream._stream import Connection
from flanstream.wire import BatchDecoder

GRACE_S = 20.0
#: Seconds per batch: two training steps and a loop that reads nothing while the server drains.
PAUSES = (0.2, 1.0, 1000.0)
COLUMNS = ("input_ids", "labels", "position_ids", "segment_ids")


def _spec(seed: int, max_batches: int = 0) -> "pb.StreamSpec":
    return pb.StreamSpec(split="train", batch_size=8, seq_len=2048, packing="packed", seed=seed,
                         max_batches=max_batches)


class SlowReader:
    """One stream read at ``pause`` seconds per batch until ``hurry`` is set, then at once."""

    def __init__(self, target: str, decoder: BatchDecoder, seed: int, pause: float, hurry: threading.Event) -> None:
        self.client = Client(target)  # its own channel, as each trainer process has
        self.client.corpus_info()  # as FlanStreamDataset does before it streams
        self.conn = Connection(self.client, pb.StreamRequest(spec=_spec(seed)), decoder, prefetch=4)
        self.seed, self.pause, self.hurry = seed, pause, hurry
        self.batches: List[Dict[str, Any]] = []
        self.last: Tuple[str, Any] = ("", None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            kind, payload = self.conn.get()
            if kind != "batch":
                self.last = (kind, payload)
                return
            self.batches.append(payload)
            self.hurry.wait(self.pause)


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_ends_slow_readers_with_their_tokens_and_frees_the_port(index_dir: Path, tmp_path: Path, workers: int) -> None:
    old = ServerProcess(index_dir, tmp_path, ["--workers", str(workers), "--set", f"server.shutdown_grace_ms={int(GRACE_S * 1000)}"])
    client = Client(old.target)
    decoder = BatchDecoder(client.corpus_info(), "numpy")
    hurry = threading.Event()
    readers = [SlowReader(old.target, decoder, seed, pause, hurry) for seed, pause in enumerate(PAUSES, start=11)]
    replacement = None
    try:
        while len(readers[0].batches) < 5 or any(not r.batches for r in readers):
            time.sleep(0.05)
        time.sleep(3)  # the readers fall far behind the server: many batches sit in gRPC buffers
        sent = time.monotonic()
        old.proc.send_signal(15)
        # The port is free while the old process still drains: a replacement binds it.
        time.sleep(0.5)
        replacement = ServerProcess(index_dir, tmp_path, ["--port", str(old.port)])
        assert replacement.port == old.port
        code = old.proc.wait(GRACE_S + 10)
        exited = time.monotonic() - sent
        assert code == 0
        # Nothing waited for the slow readers' pace: the ends reached them long before the grace ran out.
        assert exited < GRACE_S / 2, f"the old server took {exited:.1f} s of its {GRACE_S:.0f} s grace"
        slow_when_exited = [len(r.batches) for r in readers]
        hurry.set()
        for r in readers:
            r.thread.join(60)
            assert not r.thread.is_alive()
        fresh = Client(replacement.target)
        try:
            for r, seen in zip(readers, slow_when_exited):
                kind, end = r.last
                assert kind == "end", f"reader at {r.pause} s/batch: {len(r.batches)} batches, then {kind} {end!r}"
                assert end.reason == "shutdown"
                if r.pause > GRACE_S:  # read nothing during the grace, yet everything had reached it
                    assert seen == 1 and len(r.batches) > 1
                last = r.batches[-1]
                assert bytes(end.resume_token) == last["resume_token"]
                steps = [b["step"] for b in r.batches]
                assert steps == list(range(len(steps)))
                # The token resumes right after the last batch received, byte for byte.
                resumed = _take(fresh, pb.StreamRequest(resume=pb.Resume(token=end.resume_token, max_batches=2)), decoder)
                whole = _take(fresh, pb.StreamRequest(spec=_spec(r.seed, len(steps) + 2)), decoder)
                assert [b["step"] for b in resumed] == [len(steps), len(steps) + 1]
                for got, want in zip(r.batches + resumed, whole):
                    assert all(np.array_equal(got[c], want[c]) for c in COLUMNS)
                    assert got["resume_token"] == want["resume_token"]
        finally:
            fresh.close()
    finally:
        hurry.set()
        for r in readers:
            r.conn.close()
            r.client.close()
        client.close()
        old.kill()
        if replacement is not None:
            replacement.terminate()


def _take(client: Client, first: "pb.StreamRequest", decoder: BatchDecoder) -> List[Dict[str, Any]]:
    out = []
    call = client.stream_batches(iter([first]))
    for resp in call:
        if resp.WhichOneof("kind") != "batch":
            break
        out.append(decoder(resp.batch))
    return out

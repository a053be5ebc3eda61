"""One measurement of the stream benchmark: tokens/s delivered by a source into numpy or torch.

Modes (each prints one JSON line {"tokens": …, "seconds": …, "batches": …}):
  flanstream TARGET  — FlanStreamDataset, 8 × 4096 (--packing, --layout/--codebooks), the real
                       client (decode + prefetch);
                       --report: an odm policy stream, and every batch's per-task losses (task_losses
                       over a [B, L] loss) reported back (closed-loop benchmark)
  jsonl FILE         — a plain Python loader: pre-tokenized JSONL, json.loads, greedy packing
  grpc TARGET        — a bare grpcio client reading a fixed Batch message (128 KB of tokens, the
                       generated flanstream stubs) into a numpy view, nothing else
  bytes TARGET       — a bare grpcio client reading messages of one 128 KB `bytes` field
                       (google.protobuf.BytesValue) into a numpy view: the true transport limit
  socket PORT        — raw loopback bytes into a buffer (recv_into), nothing else
  digests TARGET     — not timed: {"digests": [...]}, one sha1 per batch over its dense tensors
                       (for checking that streams served by different replicas are identical)
Tokens are real (non-pad) tokens; the ceilings count payload bytes / 4.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "clients", "python"))

B, L, WARMUP = 8, 4096, 10


def to_output(arrays: dict, output: str) -> dict:
    if output == "torch":
        import torch
        return {k: torch.from_numpy(v.astype(np.int64) if k != "segment_ids" else v) for k, v in arrays.items()}
    return arrays


POLICY = {"weights": {"speech": 0.5, "music": 0.25, "audio": 0.25}, "policy": "odm", "lag_steps": 8}


def flanstream(target: str, batches: int, output: str, rank: int, world: int, report: bool = False,
               packing: str = "packed", audio: dict | None = None) -> tuple[int, float]:
    from flanstream import FlanStreamDataset, task_losses
    ds = FlanStreamDataset(target, split="train", batch_size=B, seq_len=L, packing=packing, seed=0,
                           output=output, rank=rank, world_size=world, max_batches=batches + WARMUP, prefetch=8,
                           mixture=POLICY if report else None, audio=audio)
    loss = np.ones((B, L), dtype=np.float32)  # stands in for the trainer's per-token loss
    tokens, start = 0, 0.0
    for i, batch in enumerate(ds):
        if i == WARMUP:
            start = time.perf_counter()
            CPU[0] = time.process_time()
        if i >= WARMUP:
            tokens += int(batch["cu_seqlens"][-1])
        if report:
            ds.report_losses(batch["step"], task_losses(loss, batch))
    CPU[1] = time.process_time()
    return tokens, time.perf_counter() - start


#: Process CPU seconds (all threads: decoding, prefetch, reporting) at the start and end of the timed part.
CPU = [0.0, 0.0]


def digests(target: str, batches: int, rank: int, world: int) -> list[str]:
    from flanstream import FlanStreamDataset
    ds = FlanStreamDataset(target, split="train", batch_size=B, seq_len=L, packing="packed", seed=0,
                           output="numpy", rank=rank, world_size=world, max_batches=batches)
    out = []
    for batch in ds:
        h = hashlib.sha1()
        for k in ("input_ids", "labels", "position_ids", "segment_ids", "cu_seqlens"):
            h.update(batch[k].tobytes())
        out.append(h.hexdigest())
    return out


def jsonl(path: str, batches: int, output: str) -> tuple[int, float]:
    """What users write by hand: read lines, parse, pack greedily into fixed rows."""
    def examples():
        while True:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    yield json.loads(line)

    def fresh():
        return (np.full((B, L), 151643, np.int32), np.full((B, L), -100, np.int32),
                np.zeros((B, L), np.int32), np.zeros((B, L), np.int32))

    ids, labels, pos, seg = fresh()
    row = off = nseg = 0
    tokens = done = 0
    start = time.perf_counter()
    for ex in examples():
        x = ex["input_ids"]
        n = len(x)
        if n > L:
            continue
        if off + n > L:
            row, off, nseg = row + 1, 0, 0
            if row == B:
                to_output({"input_ids": ids, "labels": labels, "position_ids": pos, "segment_ids": seg}, output)
                done += 1
                if done == WARMUP:
                    start, tokens = time.perf_counter(), 0
                    CPU[0] = time.process_time()
                if done == batches + WARMUP:
                    break
                ids, labels, pos, seg = fresh()
                row = 0
        ids[row, off:off + n] = x
        labels[row, off:off + n] = ex["labels"]
        pos[row, off:off + n] = np.arange(n)
        nseg += 1
        seg[row, off:off + n] = nseg
        off += n
        tokens += n
    CPU[1] = time.process_time()
    return tokens, time.perf_counter() - start


def grpc_ceiling(target: str, batches: int) -> tuple[int, float]:
    import grpc
    from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
    from flanstream._proto.flanstream.v1 import data_service_pb2_grpc as pbg
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
    stream = pbg.DataServiceStub(channel).StreamBatches(iter([pb.StreamRequest(spec=pb.StreamSpec(batch_size=B, seq_len=L))]))
    return _drain(stream, batches, lambda msg: np.frombuffer(msg.batch.tokens, dtype=np.int32))


def bytes_ceiling(target: str, batches: int) -> tuple[int, float]:
    import grpc
    from google.protobuf.wrappers_pb2 import BytesValue
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
    method = channel.stream_stream("/flanstream.bench.Bytes/Stream", request_serializer=BytesValue.SerializeToString,
                                   response_deserializer=BytesValue.FromString)
    stream = method(iter([BytesValue()]))
    return _drain(stream, batches, lambda msg: np.frombuffer(msg.value, dtype=np.int32))


def _drain(stream, batches: int, to_array) -> tuple[int, float]:
    """Reads WARMUP + batches messages, each into a numpy array; tokens (payload bytes / 4) and seconds after the warm-up."""
    tokens, start = 0, 0.0
    for i, msg in enumerate(stream):
        if i == WARMUP:
            start = time.perf_counter()
            CPU[0] = time.process_time()
        if i >= WARMUP:
            tokens += to_array(msg).size
        if i == batches + WARMUP - 1:
            break
    elapsed = time.perf_counter() - start
    CPU[1] = time.process_time()
    stream.cancel()
    return tokens, elapsed


def socket_ceiling(port: int, batches: int) -> tuple[int, float]:
    sock = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    want = batches * B * L * 4
    for _ in range(64):
        sock.recv_into(view)
    got, start = 0, time.perf_counter()
    while got < want:
        got += sock.recv_into(view)
    elapsed = time.perf_counter() - start
    sock.close()
    return got // 4, elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["flanstream", "jsonl", "grpc", "bytes", "socket", "digests"])
    p.add_argument("where")
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--output", choices=["numpy", "torch"], default="numpy")
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--report", action="store_true")
    p.add_argument("--packing", choices=["none", "packed", "multiturn"], default="packed")
    p.add_argument("--layout", choices=["flat", "delay"], default=None)
    p.add_argument("--codebooks", type=int, default=0)
    a = p.parse_args()
    if a.mode == "digests":
        print(json.dumps({"digests": digests(a.where, a.batches, a.rank, a.world)}))
        return
    if a.mode == "flanstream":
        audio = {"layout": a.layout, "codebooks": a.codebooks} if a.layout else None
        tokens, secs = flanstream(a.where, a.batches, a.output, a.rank, a.world, a.report, a.packing, audio)
    elif a.mode == "jsonl":
        tokens, secs = jsonl(a.where, a.batches, a.output)
    elif a.mode == "grpc":
        tokens, secs = grpc_ceiling(a.where, a.batches)
    elif a.mode == "bytes":
        tokens, secs = bytes_ceiling(a.where, a.batches)
    else:
        tokens, secs = socket_ceiling(int(a.where), a.batches)
    print(json.dumps({"tokens": tokens, "seconds": secs, "batches": a.batches, "cpu_seconds": CPU[1] - CPU[0]}))


if __name__ == "__main__":
    main()

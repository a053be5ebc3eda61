"""The Python client's decode alone: CPU per batch of ``BatchDecoder`` on batches recorded from a
real server, so a client change is measured without the server, the transport or the machine's
other load in the way (``stream-decode-bench.ts`` runs it, alternating two client trees).

  record TARGET FILE [--packing P] [--layout flat|delay --codebooks K] [--batches N]
      streams N batches (8 × 4096, seed 0) and writes the raw StreamResponse messages as received,
      with the server's CorpusInfo (task and domain names), to FILE
  time FILE [--client DIR] [--output numpy|torch] [--reps R] [--read-segments]
      parses FILE (not timed), then decodes every batch R times with the client under DIR
      (a source tree; default this one): prints {"us_per_batch": [one per rep], "tokens": …}.
      --read-segments also reads every batch's segments (what a loop reading them pays)
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
B, L = 8, 4096


def _client(root: str) -> None:
    sys.path.insert(0, os.path.join(root, "clients", "python"))


def record(target: str, path: str, packing: str, audio: dict | None, batches: int) -> None:
    _client(os.path.join(HERE, "..", "..", ".."))
    import grpc
    from flanstream import FlanStreamDataset
    from flanstream.client import Client
    from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
    spec = FlanStreamDataset(target, split="train", batch_size=B, seq_len=L, packing=packing, seed=0,
                             output="numpy", audio=audio).spec
    info = Client(target).corpus_info_proto().SerializeToString()
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)])
    call = channel.stream_stream("/flanstream.v1.DataService/StreamBatches",
                                 request_serializer=pb.StreamRequest.SerializeToString)(iter([pb.StreamRequest(spec=spec)]))
    with open(path, "wb") as f:
        f.write(struct.pack("<I", len(info)) + info)
        for i, raw in enumerate(call):  # raw bytes: no deserializer
            f.write(struct.pack("<I", len(raw)) + raw)
            if i + 1 == batches:
                break
    call.cancel()
    channel.close()


def _read(path: str) -> tuple[bytes, list[bytes]]:
    with open(path, "rb") as f:
        data = f.read()
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack_from("<I", data, at)
        out.append(data[at + 4:at + 4 + n])
        at += 4 + n
    return out[0], out[1:]


def time_decode(path: str, client: str, output: str, reps: int, read_segments: bool) -> dict:
    _client(client)
    from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
    from flanstream.info import CorpusInfo
    from flanstream.wire import BatchDecoder
    info_bytes, raws = _read(path)
    info = CorpusInfo.from_proto(pb.CorpusInfo.FromString(info_bytes))
    batches = [pb.StreamResponse.FromString(r).batch for r in raws]
    dec = BatchDecoder(info, output)
    tokens = sum(len(b.tokens) // 4 for b in batches) // len(batches)
    for b in batches[:20]:  # warm-up: scratch buffers, imports
        dec(b)
    per = []
    for _ in range(reps):
        t = time.process_time()
        for b in batches:
            out = dec(b)
            if read_segments:
                out["segments"][0]
        per.append((time.process_time() - t) / len(batches) * 1e6)
    return {"us_per_batch": per, "tokens": tokens, "batches": len(batches),
            "segments": sum(len(b.seg_length) for b in batches) // len(batches)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["record", "time"])
    p.add_argument("where", nargs="+")
    p.add_argument("--packing", choices=["none", "packed", "multiturn"], default="packed")
    p.add_argument("--layout", choices=["flat", "delay"], default=None)
    p.add_argument("--codebooks", type=int, default=0)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--client", default=os.path.join(HERE, "..", "..", ".."))
    p.add_argument("--output", choices=["numpy", "torch"], default="numpy")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--read-segments", action="store_true")
    a = p.parse_args()
    if a.mode == "record":
        audio = {"layout": a.layout, "codebooks": a.codebooks} if a.layout else None
        record(a.where[0], a.where[1], a.packing, audio, a.batches)
    else:
        print(json.dumps(time_decode(a.where[0], a.client, a.output, a.reps, a.read_segments)))


if __name__ == "__main__":
    main()

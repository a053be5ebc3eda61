"""An in-process fake ``DataService`` (grpcio) for client tests that need no Node server.

Batches are a pure function of (seed, step, rank, world_size, weights in effect), so tests can
check exact resumption, failover and mixture updates. Tokens: ``"fake:<step>:<json weights>"``.
"""
from __future__ import annotations

import json
import threading
from concurrent import futures
from typing import Any, Dict, List, Optional

import grpc
import numpy as np

from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
from flanstream._proto.flanstream.v1 import data_service_pb2_grpc as pb_grpc

TASKS = ["speech/Speech Recognition/ASR", "music/Genre/Genre Classification", "audio/Captioning/Audio Captioning"]
DOMAINS = ["speech", "music", "audio"]


def corpus_info() -> "pb.CorpusInfo":
    tasks = []
    for i, path in enumerate(TASKS):
        d, major, minor = path.split("/")
        tasks.append(pb.TaskInfo(index=i, path=path, domain=d, major=major, minor=minor, ug="understanding",
                                 train_records=100 * (i + 1), dev_records=5, test_records=7))
    return pb.CorpusInfo(index_fingerprint="fake", records=sum(t.train_records for t in tasks), tasks=tasks,
                         vocab=pb.VocabLayout(pad_id=0, total_size=1000), domains=DOMAINS, mixtures=["uniform"])


def _weights(msg: Any) -> Dict[str, float]:
    return dict(sorted(msg.weights.items())) or {d: 1.0 for d in DOMAINS}


def make_batch(seed: int, step: int, rank: int, world: int, weights: Dict[str, float], B: int, L: int) -> "pb.Batch":
    rng = np.random.default_rng([seed, step, rank, world])
    lens = [int(x) for x in rng.integers(1, L // 2 + 1, size=B)]
    tokens = rng.integers(1, 1000, size=sum(lens)).astype("<i4")
    total = sum(weights.values())
    target = [weights.get(d, 0.0) / total for d in DOMAINS]
    ends = np.cumsum(lens).tolist()
    spans = [x for e, n in zip(ends, lens) for x in (e - n // 2, e)]
    return pb.Batch(
        step=step, rank=rank, world_size=world, batch_size=B, seq_len=L, pad_id=0, tokens=tokens.tobytes(),
        seg_row=list(range(B)), seg_offset=[0] * B, seg_length=lens, seg_task=[(step + r) % 3 for r in range(B)],
        seg_domain=[(step + r) % 3 for r in range(B)], seg_turns=[1] * B,
        uuids=[f"u{step}-{rank}-{r}" for r in range(B)], turn_task=[(step + r) % 3 for r in range(B)],
        loss_spans=spans, resume_token=f"fake:{seed}:{step}:{json.dumps(weights, sort_keys=True)}".encode(),
        stats=pb.Stats(task_examples=[step + 1] * 3, task_target=target, domain_examples=[step + 1] * 3,
                       domain_target=target),
    )


class FakeService(pb_grpc.DataServiceServicer):
    def __init__(self, eval_batches: int = 3) -> None:
        self.first_requests: List[pb.StreamRequest] = []
        self.live_updates: List[pb.MixtureUpdate] = []
        self.fail_after: Optional[int] = None     # abort with UNAVAILABLE after this many batches
        self.shutdown_after: Optional[int] = None  # send StreamEnd(reason="shutdown") after this many
        self.eval_batches = eval_batches
        self.sent = 0

    def _drain(self, request_iterator) -> None:
        try:
            for r in request_iterator:
                self.live_updates.append(r.mixture_update)
        except grpc.RpcError:
            pass

    def GetCorpusInfo(self, request, context):
        return corpus_info()

    def StreamBatches(self, request_iterator, context):
        first = next(request_iterator)
        self.first_requests.append(first)
        threading.Thread(target=self._drain, args=(request_iterator,), daemon=True).start()
        if first.WhichOneof("kind") == "spec":
            spec = first.spec
            if spec.batch_size == 0 or spec.seq_len == 0:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "spec.batch_size and spec.seq_len must be positive")
            if spec.seed == 666:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "spec.seed: 666 is not allowed here")
            if spec.split not in ("train", "heldout", "dev", "test"):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"spec.split: unknown split {spec.split!r}")
            seed, start, weights = spec.seed, 0, _weights(spec.mixture)
            B, L, split, rank, world, limit = spec.batch_size, spec.seq_len, spec.split, spec.rank, spec.world_size or 1, spec.max_batches
        else:
            r = first.resume
            tag, seed_s, step_s, wjson = r.token.decode().split(":", 3)
            if tag != "fake":
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "resume token is from another index")
            seed, start, weights = int(seed_s), int(step_s) + 1, json.loads(wjson)
            B, L, split, rank, world, limit = 2, 16, "train", r.rank, r.world_size or 1, r.max_batches
            if "eval" in wjson:
                split = "test"
        updates = sorted(first.updates, key=lambda u: u.apply_at_step)
        n = 0
        step = start
        while context.is_active():
            for u in updates:
                if u.apply_at_step == step:
                    weights = _weights(u)
            if split != "train" and step >= self.eval_batches:
                yield pb.StreamResponse(end=pb.StreamEnd(task_examples=[1, 2, 0], total_task_examples=[1, 2, 0],
                                                         examples=3, total_examples=3, reason="complete"))
                return
            if limit and n >= limit:
                yield pb.StreamResponse(end=pb.StreamEnd(reason="max_batches"))
                return
            if self.fail_after is not None and self.sent >= self.fail_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake server going away")
            if self.shutdown_after is not None and self.sent >= self.shutdown_after:
                yield pb.StreamResponse(end=pb.StreamEnd(reason="shutdown"))
                return
            w = dict(weights, eval=1.0) if split != "train" else weights
            yield pb.StreamResponse(batch=make_batch(seed, step, rank, world, w, B, L))
            self.sent += 1
            n += 1
            step += 1


class FakeServer:
    """Start with ``FakeServer()``; ``.target``; ``.service``; ``.stop()``."""

    def __init__(self, port: int = 0) -> None:
        self.service = FakeService()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_DataServiceServicer_to_server(self.service, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.target = f"127.0.0.1:{self.port}"
        self.server.start()

    def stop(self, grace: Optional[float] = None) -> None:
        self.server.stop(grace).wait()

"""One ``StreamBatches`` call read by a background thread into a bounded queue, plus the
reconnection policy.

A :class:`Connection` owns one call on one replica. Its request side is a blocking generator fed
from a queue (first message: spec or resume; later: optional mixture updates); its response side
is drained by a daemon thread that decodes each batch and puts ``("batch", dict)``,
``("end", StreamEnd)`` or ``("error", exception)`` into a queue of at most ``prefetch`` items.
Errors travel through the queue *after* the batches that preceded them, so the consumer never
loses a good batch and always knows exactly what it handed out. Once the server announces its
shutdown (an HTTP/2 GOAWAY: the channel leaves ``READY``) it builds nothing more, so the thread
reads the rest of the call at once, past the queue's bound (up to ``READ_THROUGH_BYTES``): the
final ``StreamEnd`` reaches this process within the server's grace however slowly the training
loop consumes, and the loop still gets every batch before it. Reconnecting is the consumer's
job (see :mod:`flanstream.dataset`): it drops the connection and opens a new one from the resume
token of the last batch it handed to the training loop.
"""
from __future__ import annotations

import atexit
import queue
import random
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import grpc

from ._proto.flanstream.v1 import data_service_pb2 as pb
from .client import Client

__all__ = ["Connection", "RetryPolicy", "Item", "Interrupted", "probe_total_steps", "READ_THROUGH_BYTES"]

#: ``(kind, payload)`` with kind ``"batch"`` (decoded dict), ``"end"`` (``StreamEnd``),
#: ``"eof"`` (stream closed without a ``StreamEnd``) or ``"error"`` (an exception).
Item = Tuple[str, Any]
_POLL = 0.05
#: Bytes read past the prefetch bound after the server announced its shutdown (see above): what
#: it still had queued then, far more than a server holds, and a bound should a GOAWAY come for
#: another reason while the server keeps building.
READ_THROUGH_BYTES = 512 << 20
_LIVE: "weakref.WeakSet[Connection]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Cancel open calls while the interpreter is still fully alive: cancelling a gRPC call during
    # finalization (e.g. from a generator's ``finally`` when module globals are cleared) can hang.
    for conn in list(_LIVE):
        conn.close()
    for client in list(Client.instances):
        client.close()


@dataclass
class RetryPolicy:
    """Reconnection policy: exponential backoff with jitter, bounded attempts.

    Attributes:
        attempts: consecutive failed attempts tolerated before the error is raised (the count
            resets whenever a batch arrives).
        initial_backoff / max_backoff / multiplier: delay before attempt ``k`` (1-based) is
            ``min(max_backoff, initial_backoff * multiplier**(k-1))``, times a jitter in [0.5, 1].
            The first retry goes to the next replica immediately when there are several.
        codes: gRPC status codes that trigger a reconnect (others raise at once).
    """

    attempts: int = 30
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    multiplier: float = 2.0
    codes: Tuple[grpc.StatusCode, ...] = (grpc.StatusCode.UNAVAILABLE,)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 0:
            raise ValueError(f"retry attempts must be a non-negative integer, got {self.attempts!r}")
        if not (self.initial_backoff >= 0 and self.max_backoff >= 0 and self.multiplier >= 1):
            raise ValueError("retry backoffs must be >= 0 and multiplier >= 1")

    def delay(self, attempt: int, rotate: bool) -> float:
        """Seconds to wait before reconnection attempt ``attempt`` (1-based)."""
        if rotate and attempt == 1:
            return 0.0
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, attempt - 1))
        return base * random.uniform(0.5, 1.0)

    def retryable(self, error: BaseException) -> bool:
        code = getattr(error, "code", None)
        try:
            status = code() if callable(code) else code
        except Exception:  # pragma: no cover - defensive
            return False
        return status in self.codes


class Connection:
    """One ``StreamBatches`` call with a background prefetch thread.

    Args:
        client: the replica to talk to.
        first: the first ``StreamRequest`` (spec or resume, with ``updates``).
        decode: ``Batch`` → batch dict (runs on the prefetch thread).
        prefetch: queue capacity in batches.
    """

    def __init__(self, client: Client, first: "pb.StreamRequest", decode: Callable[["pb.Batch"], Dict[str, Any]],
                 prefetch: int) -> None:
        self.client = client
        self.target = client.target
        self._decode = decode
        self._items: "queue.Queue[Item]" = queue.Queue(maxsize=prefetch)
        self._requests: "queue.Queue[Optional[pb.StreamRequest]]" = queue.Queue()
        self._requests.put(first)
        self._closed = threading.Event()
        self._shutdown_seen = threading.Event()
        self._read_through = 0
        self._call: Any = None
        self._thread = threading.Thread(target=self._run, name=f"flanstream-prefetch[{self.target}]", daemon=True)
        _LIVE.add(self)
        self._thread.start()

    # -- request side -----------------------------------------------------------------------
    def _request_iter(self) -> Iterator["pb.StreamRequest"]:
        while True:
            req = self._requests.get()
            if req is None or self._closed.is_set():
                return
            yield req

    def send(self, request: "pb.StreamRequest") -> None:
        """Queue a later client message (e.g. ``StreamRequest(mixture_update=...)``)."""
        self._requests.put(request)

    # -- response side ----------------------------------------------------------------------
    def _put(self, item: Item, size: int = 0) -> bool:
        while not self._closed.is_set():
            if self._shutdown_seen.is_set() and self._read_through + size <= READ_THROUGH_BYTES:
                self._read_through += size
                with self._items.mutex:  # past the bound: the server has stopped building
                    self._items.queue.append(item)
                    self._items.not_empty.notify()
                return True
            try:
                self._items.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _watch(self) -> Callable[[grpc.ChannelConnectivity], None]:
        """A connectivity callback: leaving ``READY`` while this call streams means a GOAWAY."""
        ready = [False]

        def on_state(state: grpc.ChannelConnectivity) -> None:
            if state is grpc.ChannelConnectivity.READY:
                ready[0] = True
            elif ready[0]:
                self._shutdown_seen.set()

        return on_state

    def _run(self) -> None:
        channel, watch = self.client.channel, self._watch()
        channel.subscribe(watch, try_to_connect=False)
        try:
            self._call = self.client.stream_batches(self._request_iter())
            if self._closed.is_set():
                self._call.cancel()
                return
            for resp in self._call:
                kind = resp.WhichOneof("kind")
                if kind == "batch":
                    if not self._put(("batch", self._decode(resp.batch)), resp.ByteSize()):
                        return
                elif kind == "end":
                    self._put(("end", resp.end))
                    return
            self._put(("eof", None))
        except BaseException as e:  # grpc.RpcError, decode errors, ...
            if not self._closed.is_set():
                self._put(("error", e))
        finally:
            channel.unsubscribe(watch)
            self._requests.put(None)

    def get(self) -> Item:
        """The next item, blocking until one arrives."""
        while True:
            try:
                return self._items.get(timeout=_POLL * 10)
            except queue.Empty:
                if not self._thread.is_alive() and self._items.empty():
                    return ("error", RuntimeError("flanstream prefetch thread exited unexpectedly"))

    def buffered(self) -> int:
        """Batches currently waiting in the prefetch queue."""
        return self._items.qsize()

    def close(self) -> None:
        """Cancel the call, drop prefetched items and stop the thread (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        _LIVE.discard(self)
        self._requests.put(None)
        if sys.is_finalizing():  # too late to talk to gRPC safely; the process is exiting anyway
            return
        call = self._call
        if call is not None:
            call.cancel()
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
            self._call = None  # release the call now, not during interpreter finalization


class Interrupted(Exception):
    """The server ended the stream without finishing it (``shutdown`` drain or a bare close):
    reconnect and resume, like a transport error."""

    def __init__(self, kind: str, end: Any) -> None:
        super().__init__(f"stream {'ended: ' + end.reason if kind == 'end' else 'closed without StreamEnd'}")
        self.details = str(self)


def probe_total_steps(client: Client, spec: "pb.StreamSpec") -> int:
    """``total_steps`` of an evaluation stream, from the first message of a short stream opened
    with ``spec`` (0 when the set is empty and the stream ends at once). Raises ``grpc.RpcError``
    or :class:`Interrupted` (a draining server) for the caller's retry loop."""
    call = client.stream_batches(iter([pb.StreamRequest(spec=spec)]))
    try:
        for resp in call:
            if resp.WhichOneof("kind") == "batch":
                return int(resp.batch.total_steps)
            if resp.end.reason == "shutdown":
                raise Interrupted("end", resp.end)
            return 0
        raise Interrupted("eof", None)
    finally:
        call.cancel()

"""Connection to one flanstream server: channel set-up, auth, ``GetCorpusInfo``."""
from __future__ import annotations

import os
import re
import threading
import weakref
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import grpc

from ._proto.flanstream.v1 import data_service_pb2 as pb
from ._proto.flanstream.v1 import data_service_pb2_grpc as pb_grpc
from .errors import from_rpc_error
from .info import CorpusInfo

__all__ = ["Client", "MAX_TOKEN_CHARS", "TLS", "check_target", "check_filter"]

#: ``False`` (plaintext), ``True`` (TLS with the system roots) or a path to a PEM root bundle.
TLS = Union[bool, str, "os.PathLike[str]"]

#: Batches can be large (``batch_size × seq_len × 4`` bytes plus metadata); lift gRPC's 4 MiB cap.
#: gRPC's own reconnect backoff (1 s, then ×1.6 up to 120 s) would leave a restarted server
#: unreached for seconds after it listens, whatever the dataset's RetryPolicy: while it runs, every
#: call fails at once. Capped at 1 s, a short outage costs about its own length plus a second.
DEFAULT_CHANNEL_OPTIONS: Tuple[Tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


def _serialize_deterministic(msg: Any) -> bytes:
    # Map fields (mixture weights) in sorted key order, so equal requests are equal bytes.
    return msg.SerializeToString(deterministic=True)


#: gRPC name-resolver schemes passed through as given (``unix:/path``, ``dns:///host:port``, ...).
_GRPC_SCHEMES = ("dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock", "xds")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.%\w]+\]|[^\s:/\[\]@?#]+):(\d{1,5})$")


def check_filter(filter: Any) -> str:
    """A stream filter argument as sent (``None`` = none, sent as ``""``); anything but a ``str`` is a
    ``ValueError``. The server parses the text: an error in it is ``INVALID_ARGUMENT`` at its position."""
    if filter is None:
        return ""
    if not isinstance(filter, str):
        raise ValueError(f"filter must be a str such as 'ug == \"generation\" and audio_seconds <= 30', "
                         f"got {type(filter).__name__}")
    return filter


def check_target(target: Any) -> str:
    """``target`` if it is a server address gRPC can dial, else a ``ValueError`` showing the form.

    gRPC reads ``http://host:port`` as a DNS name with a port of ``//host:port`` and a host
    without a port as port 443, and retries either until the reconnect budget runs out; both are
    refused here at once. Accepted: ``host:port`` (``[ipv6]:port`` for IPv6 literals) and the
    gRPC resolver forms ``dns:``, ``unix:``, ``ipv4:``, ``ipv6:``, ``unix-abstract:``, ``vsock:``,
    ``xds:``.
    """
    form = "expected 'host:port', e.g. 'localhost:50051' or '[::1]:50051'"
    if not isinstance(target, str) or not target:
        raise ValueError(f"target must be a non-empty string; {form}, got {target!r}")
    scheme, colon, rest = target.partition(":")
    if colon and scheme.lower() in _GRPC_SCHEMES and rest and not rest.isdigit():
        return target
    if "://" in target:
        raise ValueError(f"target {target!r} is a URL; {form} (no scheme such as http://)")
    m = _HOST_PORT.match(target)
    if m is None:
        if ":" not in target:
            raise ValueError(f"target {target!r} has no port; {form}")
        raise ValueError(f"target {target!r} is not a server address; {form}")
    port = int(m.group(2))
    if not 1 <= port <= 65535:
        raise ValueError(f"target {target!r} has port {port}, outside 1..65535; {form}")
    return target


#: Longest bearer token sent (see ``Client``): far above real tokens, far below HTTP/2's 64 KiB header-field limit.
MAX_TOKEN_CHARS = 16384


class Client:
    """A client of one ``flanstream.v1.DataService`` replica.

    Args:
        target: ``host:port`` of the server (``[ipv6]:port``, or a gRPC resolver form such as
            ``unix:/path``); a URL such as ``http://host:port`` or a host without a port is a
            ``ValueError`` (see :func:`check_target`).
        token: bearer token sent as ``authorization: Bearer <token>`` metadata on every call.
        tls: ``False`` for plaintext, ``True`` for TLS with the system's root certificates, or
            the path of a PEM file with the root certificates to trust.
        timeout: default deadline in seconds for unary calls (``corpus_info``).
        options: extra gRPC channel options, appended to :data:`DEFAULT_CHANNEL_OPTIONS`.

    The channel is created lazily and is safe to share between threads. Use as a context
    manager or call :meth:`close` to release it.
    """

    #: Live clients; their channels are closed at interpreter exit (see ``flanstream._stream``).
    instances: "weakref.WeakSet[Client]" = weakref.WeakSet()

    def __init__(
        self,
        target: str,
        token: Optional[str] = None,
        tls: TLS = False,
        *,
        timeout: float = 30.0,
        options: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        check_target(target)
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string or None")
        if token is not None and len(token) > MAX_TOKEN_CHARS:
            # HTTP/2 servers refuse a header field over 64 KiB before any handler sees it, and
            # grpcio then retries the refused call until its deadline: say so at once instead.
            raise ValueError(f"token has {len(token)} characters; bearer tokens over {MAX_TOKEN_CHARS} cannot be sent as an authorization header")
        if not isinstance(tls, (bool, str, os.PathLike)):
            raise ValueError(f"tls must be False, True or a path to root certificates, got {tls!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.target = target
        self.token = token
        self.tls = tls
        self.timeout = float(timeout)
        self._options: List[Tuple[str, Any]] = list(DEFAULT_CHANNEL_OPTIONS) + list(options or ())
        self._lock = threading.RLock()
        self._channel: Optional[grpc.Channel] = None
        self._stub: Optional[pb_grpc.DataServiceStub] = None
        self._stream_method: Any = None

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def metadata(self) -> Tuple[Tuple[str, str], ...]:
        """Call metadata (the bearer token, if any)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def _credentials(self) -> grpc.ChannelCredentials:
        if self.tls is True:
            return grpc.ssl_channel_credentials()
        try:
            with open(os.fspath(self.tls), "rb") as f:  # type: ignore[arg-type]
                roots = f.read()
        except OSError as e:
            raise ValueError(f"cannot read TLS root certificates {self.tls!r}: {e}") from e
        return grpc.ssl_channel_credentials(root_certificates=roots)

    @property
    def channel(self) -> grpc.Channel:
        """The (lazily created) gRPC channel."""
        with self._lock:
            if self._channel is None:
                if self.tls is False:
                    self._channel = grpc.insecure_channel(self.target, options=self._options)
                else:
                    self._channel = grpc.secure_channel(self.target, self._credentials(), options=self._options)
                self._stub = pb_grpc.DataServiceStub(self._channel)
                Client.instances.add(self)
            return self._channel

    @property
    def stub(self) -> pb_grpc.DataServiceStub:
        """The generated ``DataServiceStub`` bound to :attr:`channel`."""
        self.channel  # noqa: B018 - creates the stub
        assert self._stub is not None
        return self._stub

    # -- calls ------------------------------------------------------------------------------
    def corpus_info(
        self, timeout: Optional[float] = None, contamination: bool = False, filter: Optional[str] = None,
    ) -> CorpusInfo:
        """Call ``GetCorpusInfo`` and return it as a :class:`~flanstream.info.CorpusInfo`.

        With ``contamination=True`` each held-out set also reports what its guards remove
        (``HeldoutSetInfo.contamination``); the server scans the train records once per guarded
        set for that (then caches), so the first such call may take seconds.

        With ``filter`` (a stream filter, as ``FlanStreamDataset(filter=...)`` takes) the answer's
        ``filter`` counts the records it keeps per task and split: a dry run before training. A bad
        filter, or one keeping nothing, is ``INVALID_ARGUMENT`` naming it.

        Raises:
            FlanStreamError: with the call's status code on failure.
        """
        return CorpusInfo.from_proto(self.corpus_info_proto(timeout, contamination, filter))

    def corpus_info_proto(
        self, timeout: Optional[float] = None, contamination: bool = False, filter: Optional[str] = None,
    ) -> "pb.CorpusInfo":
        """``GetCorpusInfo`` as the raw protobuf message."""
        if not isinstance(contamination, bool):
            raise ValueError(f"contamination must be a bool, got {contamination!r}")
        try:
            return self.stub.GetCorpusInfo(
                pb.GetCorpusInfoRequest(contamination=contamination, filter=check_filter(filter)),
                timeout=timeout or self.timeout, metadata=self.metadata,
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.target) from None

    def stream_batches(self, requests: Iterator["pb.StreamRequest"]) -> Any:
        """Open a raw ``StreamBatches`` call; returns the gRPC call (an iterator of
        ``StreamResponse`` with ``cancel()``). Most users want :class:`FlanStreamDataset`."""
        with self._lock:
            if self._stream_method is None:
                self._stream_method = self.channel.stream_stream(
                    "/flanstream.v1.DataService/StreamBatches",
                    request_serializer=_serialize_deterministic,
                    response_deserializer=pb.StreamResponse.FromString,
                )
            method = self._stream_method
        return method(requests, metadata=self.metadata)

    def close(self) -> None:
        """Close the channel (it is re-created on next use)."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = None
            self._stub = None
            self._stream_method = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.target!r}, tls={self.tls!r}, token={'***' if self.token else None})"


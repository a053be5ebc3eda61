"""Exceptions raised by the flanstream client."""
from __future__ import annotations

from typing import Optional

import grpc

__all__ = ["FlanStreamError", "from_rpc_error"]


class FlanStreamError(RuntimeError):
    """A failed call to a flanstream server, or a malformed answer from one.

    Attributes:
        code: the gRPC status code (``grpc.StatusCode``), e.g. ``INVALID_ARGUMENT`` for a bad
            stream spec, ``FAILED_PRECONDITION`` for a resume token from another index or
            held-out set, ``UNAUTHENTICATED``, ``RESOURCE_EXHAUSTED``, ``UNAVAILABLE`` once
            every reconnection attempt failed, ``DATA_LOSS`` for a batch that does not decode.
        details: the server's message (or the client's explanation).
        target: the server address the error came from, when known.
    """

    def __init__(self, code: grpc.StatusCode, details: str, target: Optional[str] = None) -> None:
        self.code = code
        self.details = details
        self.target = target
        where = f" from {target}" if target else ""
        super().__init__(f"{code.name}{where}: {details}")

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. ``"INVALID_ARGUMENT"``."""
        return self.code.name

    def __reduce__(self):  # picklable across DataLoader workers / multiprocessing
        return (type(self), (self.code, self.details, self.target))


def from_rpc_error(error: BaseException, target: Optional[str] = None) -> FlanStreamError:
    """Convert a ``grpc.RpcError`` (or any exception) into a :class:`FlanStreamError`."""
    if isinstance(error, FlanStreamError):
        return error
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):
        try:
            status = code()
            text = details()
        except Exception:  # pragma: no cover - defensive
            status, text = None, None
        if isinstance(status, grpc.StatusCode):
            return FlanStreamError(status, text or "", target)
    return FlanStreamError(grpc.StatusCode.UNKNOWN, f"{type(error).__name__}: {error}", target)

"""Raw HTTP/2 client that ends StreamBatches calls in one chosen way (Debian's python3-h2).

grpc clients cannot send these frames on purpose (an RST_STREAM with NO_ERROR, a GOAWAY with a
code), so the server's handling of each way a call can end is driven from here:

    python3 h2_call_ends.py HOST PORT MODE STREAMS REQUEST_HEX [TOKEN]

Opens STREAMS StreamBatches streams on one connection, each with the gRPC-framed request
REQUEST_HEX (a spec) and without ending its side, reads what arrives until every stream either
streams or was refused (and 0.2 s more), then ends them all as MODE says:

    rst-no-error / rst-cancel / rst-internal  RST_STREAM with code 0 / 8 / 2 on every stream
    close                                     the TCP connection closed
    goaway-close                              GOAWAY(NO_ERROR), then the connection closed
    goaway-error                              GOAWAY(PROTOCOL_ERROR), the connection kept open

It prints one line of JSON ({"admitted": n, "refused": n}) once the streams are ended, then keeps
the connection serviced (reading, acknowledging data, answering pings) until stdin closes, so the
caller checks the server while the connection that reset the streams is still open.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from typing import Dict, List, Set

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

__all__ = ["main"]

MODES = ("rst-no-error", "rst-cancel", "rst-internal", "close", "goaway-close", "goaway-error")
RST_CODES = {
    "rst-no-error": h2.errors.ErrorCodes.NO_ERROR,
    "rst-cancel": h2.errors.ErrorCodes.CANCEL,
    "rst-internal": h2.errors.ErrorCodes.INTERNAL_ERROR,
}
PATH = "/flanstream.v1.DataService/StreamBatches"


class Client:
    """One HTTP/2 connection and what its streams received."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.status: Dict[int, str] = {}
        self.data: Dict[int, int] = {}
        self.closed = False
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        out = self.conn.data_to_send()
        if out and not self.closed:
            self.sock.sendall(out)

    def pump(self, seconds: float) -> None:
        """Reads and handles frames for `seconds` (acknowledging data so flow control moves)."""
        end = time.monotonic() + seconds
        while not self.closed:
            left = end - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                self.closed = True
                return
            for ev in self.conn.receive_data(chunk):
                if isinstance(ev, h2.events.DataReceived):
                    self.data[ev.stream_id] = self.data.get(ev.stream_id, 0) + len(ev.data)
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.TrailersReceived, h2.events.ResponseReceived)):
                    for name, value in ev.headers:
                        if name == "grpc-status":
                            self.status[ev.stream_id] = value
            self.flush()

    def open(self, frame: bytes, token: str) -> int:
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", "flanstream"), (":path", PATH),
                   ("content-type", "application/grpc"), ("te", "trailers")]
        if token:
            headers.append(("authorization", f"Bearer {token}"))
        self.conn.send_headers(sid, headers)
        self.conn.send_data(sid, frame)
        self.flush()
        return sid


def main(argv: List[str]) -> int:
    if len(argv) not in (6, 7) or argv[3] not in MODES:
        raise ValueError(f"usage: h2_call_ends.py HOST PORT MODE({'|'.join(MODES)}) STREAMS REQUEST_HEX [TOKEN]; got {argv[1:]}")
    host, port, mode, count = argv[1], int(argv[2]), argv[3], int(argv[4])
    body = bytes.fromhex(argv[5])
    token = argv[6] if len(argv) == 7 else ""
    frame = b"\x00" + len(body).to_bytes(4, "big") + body
    c = Client(host, port)
    sids = [c.open(frame, token) for _ in range(count)]
    # Until every stream streams or was refused (at most 20 s), then a while longer.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not c.closed and any(s not in c.status and s not in c.data for s in sids):
        c.pump(0.05)
    c.pump(0.2)
    refused: Set[int] = {s for s in sids if c.status.get(s, "0") != "0"}
    admitted = [s for s in sids if s not in refused and c.data.get(s, 0) > 0]
    if mode in RST_CODES:
        for s in sids:
            if s not in refused:
                c.conn.reset_stream(s, RST_CODES[mode])
        c.flush()
    elif mode == "close":
        c.sock.close()
        c.closed = True
    elif mode == "goaway-close":
        c.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR)
        c.flush()
        c.sock.close()
        c.closed = True
    else:
        c.conn.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
        c.flush()
    print(json.dumps({"admitted": len(admitted), "refused": len(refused)}), flush=True)
    # Keep the connection serviced (a client that reset its streams but stays connected) until told.
    while not c.closed:
        if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.readline():
            break
        try:
            c.pump(0.05)
        except (OSError, h2.exceptions.ProtocolError):
            break
    if not c.closed:
        c.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

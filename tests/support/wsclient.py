"""A WebSocket client for malformed-input tests: wsproto does the handshake and reads the
server's frames, while the test may write any bytes it likes on the raw socket."""

from __future__ import annotations

import socket
import struct
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason

from tests.support.server import TEST_KEY, Running

MASK = b"\x5a\x13\xc4\x09"


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    masked: bool = True,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """A frame as a client sends it, written by hand; `length` forges the size."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    bit = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", first, bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, bit | 127, size)
    if not masked:
        return head + payload
    masked_payload = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + masked_payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


class RawClient:
    def __init__(
        self,
        srv: Running,
        *,
        key: str | None = TEST_KEY,
        target: str = "/api/v1/chat/ws",
        timeout: float = 5.0,
    ) -> None:
        self.sock = srv.connect(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = WSConnection(ConnectionType.CLIENT)
        headers = [] if key is None else [(b"x-api-key", key.encode())]
        self.sock.sendall(
            self.ws.send(Request(host="127.0.0.1", target=target, extra_headers=headers))
        )
        self.pending: list[Event] = []
        self.eof = False
        accepted = self.next_event()
        if not isinstance(accepted, AcceptConnection):
            raise AssertionError(f"handshake refused: {accepted!r}")

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_text(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(text)))

    def next_event(self) -> Event | None:
        """The server's next event; None at the end of the TCP stream."""
        while not self.pending:
            if self.eof:
                return None
            data = self.sock.recv(65536)
            if not data:  # not fed to wsproto, which would make up a close 1006
                self.eof = True
            else:
                self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    def next_message(self) -> Any:
        event = self.next_event()
        assert isinstance(event, TextMessage), event
        return event.data

    def close_code(self) -> tuple[int, str, bool]:
        """Read to the server's close frame: its code and reason, and whether the server
        then ended TCP. Anything else before it is an error."""
        while True:
            event = self.next_event()
            if isinstance(event, CloseConnection):
                return event.code, event.reason or "", self._ends()
            if not isinstance(event, Ping | BytesMessage):
                raise AssertionError(f"expected a close frame, got {event!r}")

    def _ends(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def handshake_response(srv: Running, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a raw request head; the status, headers and body of the answer."""
    with srv.connect() as sock:
        sock.sendall(head)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        head_bytes, _, body = raw.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body


__all__ = [
    "BytesMessage",
    "CloseConnection",
    "CloseReason",
    "Ping",
    "RawClient",
    "RejectConnection",
    "RejectData",
    "TextMessage",
    "client_frame",
    "close_payload",
    "handshake_response",
]

"""RFC 6455 WebSocket, server side, sans-IO: bytes in, events out, no sockets.

`check_handshake` validates an upgrade request's headers (RFC 6455 §4.2.1) and gives the
`Sec-WebSocket-Accept` value or the error to answer with. `WebSocket` parses client
frames into whole messages and control events and encodes the server's frames. Any
violation becomes one `Failure` event carrying the close code to send (1002 protocol,
1007 bad UTF-8, 1009 too big); after it, and after a close, the parser yields nothing
more. No extension is ever negotiated, so the RSV bits must always be zero (W2, W6).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from astrlite.http.tokens import header_tokens, wants_websocket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
VERSION = "13"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_DATA_OPCODES = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})
_CONTROL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})
MAX_CONTROL_PAYLOAD = 125  # RFC 6455 §5.5

NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
TOO_BIG = 1009


# -- the handshake -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeError:
    status: int  # 400, or 426 for a version we do not speak
    message: str


def accept_value(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def _single(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1").strip() for k, v in headers if k.lower() == name]


def check_handshake(method: bytes, headers: Iterable[tuple[bytes, bytes]]) -> str | HandshakeError:
    """The Sec-WebSocket-Accept value for a valid opening handshake, else the error."""
    headers = list(headers)
    if method != b"GET":
        return HandshakeError(400, "A WebSocket handshake must use GET")
    if not wants_websocket(headers):
        return HandshakeError(400, "This route speaks WebSocket only: send 'Upgrade: websocket'")
    if "upgrade" not in header_tokens(headers, b"connection"):
        return HandshakeError(400, "A WebSocket handshake needs 'Connection: Upgrade'")
    versions = _single(headers, b"sec-websocket-version")
    if not versions:
        return HandshakeError(400, "Missing header: Sec-WebSocket-Version (use 13)")
    if versions != [VERSION]:
        return HandshakeError(426, "Unsupported Sec-WebSocket-Version: only 13 is supported")
    keys = _single(headers, b"sec-websocket-key")
    if len(keys) != 1 or not _valid_key(keys[0]):
        return HandshakeError(
            400, "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters)"
        )
    return accept_value(keys[0])


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


# -- events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextMessage:
    data: str


@dataclass(frozen=True, slots=True)
class BytesMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The client closed. `code` is None when its close frame had no payload."""

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Failure:
    """The client broke the protocol: close with `code` and `reason`, then hang up."""

    code: int
    reason: str


Event = TextMessage | BytesMessage | Ping | Pong | CloseReceived | Failure


# -- encoding (server frames are never masked, §5.1) ----------------------------------


def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 126, length)
    else:
        head = struct.pack("!BBQ", first, 127, length)
    return head + payload


def text_frame(text: str) -> bytes:
    # A lone surrogate (valid in JSON input) cannot be UTF-8: inside a JSON string,
    # backslashreplace writes it as the JSON escape it came from.
    return frame(OP_TEXT, text.encode("utf-8", "backslashreplace"))


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame; `code=None` sends an empty payload (1005 is never sent, §7.4.1)."""
    if code is None:
        return frame(OP_CLOSE)
    # Cut to fit a control frame without splitting a character.
    cut = reason.encode("utf-8")[: MAX_CONTROL_PAYLOAD - 2]
    encoded = cut.decode("utf-8", errors="ignore").encode("utf-8")
    return frame(OP_CLOSE, struct.pack("!H", code) + encoded)


def valid_close_code(code: int) -> bool:
    """Codes a peer may send (RFC 6455 §7.4.1, §7.4.2; 1012-1014 are IANA-registered)."""
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-byte key, done as one big-integer operation (fast)."""
    size = len(payload)
    if size == 0:
        return payload
    key = (mask * (size // 4 + 1))[:size]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(size, "little")


# -- decoding ------------------------------------------------------------------------


class WebSocket:
    """Parses what a client sends. Feed bytes with `receive_data`, then drain `events`.

    Data frames are assembled into whole messages of at most `max_message_bytes`; a
    frame header that announces more fails at once, before its payload arrives, so
    buffered input never exceeds one frame plus one read.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._done = False  # after a close or a failure nothing more is parsed
        self._message_opcode: int | None = None  # set while a message is fragmented
        self._fragments: list[bytes] = []
        self._message_size = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text: list[str] = []

    @property
    def closed(self) -> bool:
        return self._done

    def receive_data(self, data: bytes) -> None:
        if not self._done:
            self._buffer += data

    def events(self) -> Iterator[Event]:
        while not self._done:
            event = self._next_event()
            if event is None:
                return
            if isinstance(event, CloseReceived | Failure):
                self._done = True
                self._buffer.clear()
                self._fragments.clear()
                self._text.clear()
            yield event

    def _next_event(self) -> Event | None:
        while True:
            parsed = self._parse_frame()
            if parsed is None or isinstance(parsed, Failure):
                return parsed
            fin, opcode, payload = parsed
            if opcode in _CONTROL_OPCODES:
                return _control(opcode, payload)
            event = self._data(fin, opcode, payload)
            if event is not None:
                return event

    def _parse_frame(self) -> tuple[bool, int, bytes] | Failure | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        fin, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            return Failure(PROTOCOL_ERROR, "Reserved bits set: no extension was negotiated")
        if opcode not in _DATA_OPCODES and opcode not in _CONTROL_OPCODES:
            return Failure(PROTOCOL_ERROR, f"Unknown opcode {opcode:#x}")
        if not second & 0x80:
            return Failure(PROTOCOL_ERROR, "Client frames must be masked")
        length = second & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                return None
            (length,) = struct.unpack_from("!H", buffer, 2)
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buffer, 2)
            if length >> 63:
                return Failure(PROTOCOL_ERROR, "Frame length has its top bit set")
            offset = 10
        if opcode in _CONTROL_OPCODES:
            if not fin:
                return Failure(PROTOCOL_ERROR, "Control frames must not be fragmented")
            if length > MAX_CONTROL_PAYLOAD:
                return Failure(PROTOCOL_ERROR, "Control frame payload over 125 bytes")
        else:
            failure = self._check_data_frame(opcode, length)
            if failure is not None:
                return failure
        end = offset + 4 + length
        if len(buffer) < end:
            return None
        mask = bytes(buffer[offset : offset + 4])
        payload = unmask(bytes(buffer[offset + 4 : end]), mask)
        del buffer[:end]
        return fin, opcode, payload

    def _check_data_frame(self, opcode: int, length: int) -> Failure | None:
        if opcode == OP_CONTINUATION and self._message_opcode is None:
            return Failure(PROTOCOL_ERROR, "Continuation frame without a message to continue")
        if opcode != OP_CONTINUATION and self._message_opcode is not None:
            return Failure(PROTOCOL_ERROR, "New message before the fragmented one ended")
        if self._message_size + length > self.max_message_bytes:
            return Failure(TOO_BIG, f"Message too large (limit {self.max_message_bytes} bytes)")
        return None

    def _data(self, fin: bool, opcode: int, payload: bytes) -> Event | None:
        if opcode != OP_CONTINUATION:
            self._message_opcode = opcode
        self._message_size += len(payload)
        if self._message_opcode == OP_TEXT:
            try:
                self._text.append(self._decoder.decode(payload, final=fin))
            except UnicodeDecodeError:
                return Failure(INVALID_DATA, "Text message is not valid UTF-8")
        else:
            self._fragments.append(payload)
        if not fin:
            return None
        event: Event
        if self._message_opcode == OP_TEXT:
            event = TextMessage("".join(self._text))
            self._text.clear()
            self._decoder.reset()
        else:
            event = BytesMessage(b"".join(self._fragments))
            self._fragments.clear()
        self._message_opcode = None
        self._message_size = 0
        return event


def _control(opcode: int, payload: bytes) -> Event:
    if opcode == OP_PING:
        return Ping(payload)
    if opcode == OP_PONG:
        return Pong(payload)
    if not payload:
        return CloseReceived(None, "")
    if len(payload) == 1:
        return Failure(PROTOCOL_ERROR, "Close frame payload of 1 byte")
    (code,) = struct.unpack_from("!H", payload)
    if not valid_close_code(code):
        return Failure(PROTOCOL_ERROR, f"Invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        return Failure(INVALID_DATA, "Close reason is not valid UTF-8")
    return CloseReceived(code, reason)


def close_reply(event: CloseReceived) -> bytes:
    """The close frame that answers a client's close: its code echoed (§5.5.1)."""
    return close_frame(event.code)

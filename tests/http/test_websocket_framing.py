"""The sans-IO WebSocket module: handshake checks, frame parsing, and malformed input."""

from __future__ import annotations

import base64
import os
import struct

import pytest

from astrlite.http import websocket as ws
from astrlite.http.tokens import wants_websocket
from astrlite.http.websocket import (
    BytesMessage,
    CloseReceived,
    Failure,
    HandshakeError,
    Ping,
    Pong,
    TextMessage,
    WebSocket,
)
from tests.support.frames import client_frame

LIMIT = 1024 * 1024
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example


def feed(data: bytes, limit: int = LIMIT) -> list[ws.Event]:
    parser = WebSocket(limit)
    parser.receive_data(data)
    return list(parser.events())


def headers(**overrides: str | None) -> list[tuple[bytes, bytes]]:
    base = {
        "host": "127.0.0.1",
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": KEY,
        "sec-websocket-version": "13",
    }
    for name, value in overrides.items():
        base[name.replace("_", "-")] = value  # type: ignore[assignment]
    return [(k.encode(), v.encode()) for k, v in base.items() if v is not None]


# -- handshake -----------------------------------------------------------------------


def test_accept_value_matches_rfc_example() -> None:
    assert ws.accept_value(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert ws.check_handshake(b"GET", headers()) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_tokens_are_case_insensitive_lists() -> None:
    result = ws.check_handshake(
        b"GET", headers(upgrade="WebSocket", connection="keep-alive, upgrade")
    )
    assert result == ws.accept_value(KEY)


@pytest.mark.parametrize(
    ("method", "overrides", "status", "words"),
    [
        (b"POST", {}, 400, "GET"),
        (b"GET", {"upgrade": None}, 400, "Upgrade: websocket"),
        (b"GET", {"upgrade": "h2c"}, 400, "Upgrade: websocket"),
        (b"GET", {"connection": "keep-alive"}, 400, "Connection: Upgrade"),
        (b"GET", {"sec_websocket_version": None}, 400, "Sec-WebSocket-Version"),
        (b"GET", {"sec_websocket_version": "8"}, 426, "only 13"),
        (b"GET", {"sec_websocket_key": None}, 400, "Sec-WebSocket-Key"),
        (b"GET", {"sec_websocket_key": base64.b64encode(b"x" * 15).decode()}, 400, "16"),
        (b"GET", {"sec_websocket_key": base64.b64encode(b"x" * 17).decode()}, 400, "16"),
        (b"GET", {"sec_websocket_key": "not base64 at all!!!!!!="}, 400, "base64"),
    ],
)
def test_bad_handshakes(
    method: bytes, overrides: dict[str, str | None], status: int, words: str
) -> None:
    result = ws.check_handshake(method, headers(**overrides))
    assert isinstance(result, HandshakeError)
    assert result.status == status
    assert words in result.message


def test_wants_websocket() -> None:
    assert wants_websocket(headers())
    assert not wants_websocket(headers(upgrade=None))


# -- well-formed input ----------------------------------------------------------------


def test_text_binary_ping_pong() -> None:
    data = (
        client_frame(ws.OP_TEXT, "héllo".encode())
        + client_frame(ws.OP_BINARY, b"\x00\xff")
        + client_frame(ws.OP_PING, b"p")
        + client_frame(ws.OP_PONG, b"q")
    )
    assert feed(data) == [TextMessage("héllo"), BytesMessage(b"\x00\xff"), Ping(b"p"), Pong(b"q")]


def test_lengths_of_each_header_size() -> None:
    for size in (0, 125, 126, 65535, 65536, 300_000):
        payload = os.urandom(size)
        assert feed(client_frame(ws.OP_BINARY, payload)) == [BytesMessage(payload)]


def test_fragments_with_interleaved_control_frames() -> None:
    data = (
        client_frame(ws.OP_TEXT, b"ab", fin=False)
        + client_frame(ws.OP_PING, b"1")
        + client_frame(ws.OP_CONTINUATION, b"cd", fin=False)
        + client_frame(ws.OP_PONG, b"")
        + client_frame(ws.OP_CONTINUATION, b"ef")
        + client_frame(ws.OP_TEXT, b"next")
    )
    assert feed(data) == [Ping(b"1"), Pong(b""), TextMessage("abcdef"), TextMessage("next")]


def test_utf8_split_across_fragments_is_valid() -> None:
    encoded = "€uro".encode()
    data = (
        client_frame(ws.OP_TEXT, encoded[:1], fin=False)
        + client_frame(ws.OP_CONTINUATION, encoded[1:2], fin=False)
        + client_frame(ws.OP_CONTINUATION, encoded[2:])
    )
    assert feed(data) == [TextMessage("€uro")]


def test_header_split_one_byte_at_a_time() -> None:
    parser = WebSocket(LIMIT)
    payload = b"x" * 70_000  # the 64-bit length form: 10 header bytes + mask
    events: list[ws.Event] = []
    for byte in client_frame(ws.OP_BINARY, payload) + client_frame(ws.OP_PING, b"z"):
        parser.receive_data(bytes([byte]))
        events.extend(parser.events())
    assert events == [BytesMessage(payload), Ping(b"z")]


def test_two_mib_in_1000_fragments_exceeds_the_limit_early() -> None:
    piece = b"a" * 2098  # 1,000 pieces ≈ 2 MiB
    parser = WebSocket(LIMIT)
    events: list[ws.Event] = []
    for index in range(1000):
        opcode = ws.OP_TEXT if index == 0 else ws.OP_CONTINUATION
        parser.receive_data(client_frame(opcode, piece, fin=index == 999))
        events.extend(parser.events())
    assert events == [Failure(1009, f"Message too large (limit {LIMIT} bytes)")]
    assert parser.closed


def test_message_exactly_at_the_limit_passes() -> None:
    assert feed(client_frame(ws.OP_BINARY, b"a" * 100), limit=100) == [BytesMessage(b"a" * 100)]


def test_close_codes_and_reason() -> None:
    assert feed(client_frame(ws.OP_CLOSE)) == [CloseReceived(None, "")]
    payload = struct.pack("!H", 4000) + "bye ✓".encode()
    assert feed(client_frame(ws.OP_CLOSE, payload)) == [CloseReceived(4000, "bye ✓")]


def test_nothing_is_parsed_after_a_close() -> None:
    data = client_frame(ws.OP_CLOSE, struct.pack("!H", 1000)) + client_frame(ws.OP_TEXT, b"x")
    parser = WebSocket(LIMIT)
    parser.receive_data(data)
    assert list(parser.events()) == [CloseReceived(1000, "")]
    parser.receive_data(client_frame(ws.OP_TEXT, b"y"))
    assert list(parser.events()) == []


# -- malformed input: each is one Failure, then silence ------------------------------


MALFORMED = [
    ("unmasked", client_frame(ws.OP_TEXT, b"hi", masked=False), 1002, "masked"),
    ("rsv1", client_frame(ws.OP_TEXT, b"hi", rsv=4), 1002, "Reserved"),
    ("rsv2", client_frame(ws.OP_TEXT, b"hi", rsv=2), 1002, "Reserved"),
    ("rsv3", client_frame(ws.OP_PING, b"", rsv=1), 1002, "Reserved"),
    ("opcode 3", client_frame(0x3, b"x"), 1002, "opcode"),
    ("opcode 0xb", client_frame(0xB, b""), 1002, "opcode"),
    ("ping over 125", client_frame(ws.OP_PING, b"p" * 126), 1002, "125"),
    ("close over 125", client_frame(ws.OP_CLOSE, b"\x03\xe8" + b"r" * 124), 1002, "125"),
    ("fragmented ping", client_frame(ws.OP_PING, b"p", fin=False), 1002, "fragmented"),
    ("stray continuation", client_frame(ws.OP_CONTINUATION, b"x"), 1002, "Continuation"),
    (
        "new message inside a fragmented one",
        client_frame(ws.OP_TEXT, b"a", fin=False) + client_frame(ws.OP_BINARY, b"b"),
        1002,
        "before the fragmented",
    ),
    (
        "64-bit length with top bit",
        client_frame(ws.OP_BINARY, b"", length=1 << 63),
        1002,
        "top bit",
    ),
    ("8 GiB frame", client_frame(ws.OP_BINARY, b"", length=8 << 30), 1009, "too large"),
    ("invalid utf-8", client_frame(ws.OP_TEXT, b"\xff"), 1007, "UTF-8"),
    (
        "invalid utf-8 split across fragments",
        client_frame(ws.OP_TEXT, b"ok \xe2\x82", fin=False)
        + client_frame(ws.OP_CONTINUATION, b"\x41"),
        1007,
        "UTF-8",
    ),
    ("truncated utf-8 at end", client_frame(ws.OP_TEXT, b"\xe2\x82"), 1007, "UTF-8"),
    ("close with 1-byte payload", client_frame(ws.OP_CLOSE, b"\x03"), 1002, "1 byte"),
    ("close code 999", client_frame(ws.OP_CLOSE, struct.pack("!H", 999)), 1002, "999"),
    ("close code 1004", client_frame(ws.OP_CLOSE, struct.pack("!H", 1004)), 1002, "1004"),
    ("close code 1005", client_frame(ws.OP_CLOSE, struct.pack("!H", 1005)), 1002, "1005"),
    ("close code 1006", client_frame(ws.OP_CLOSE, struct.pack("!H", 1006)), 1002, "1006"),
    ("close code 2999", client_frame(ws.OP_CLOSE, struct.pack("!H", 2999)), 1002, "2999"),
    ("close code 5000", client_frame(ws.OP_CLOSE, struct.pack("!H", 5000)), 1002, "5000"),
    (
        "close reason not utf-8",
        client_frame(ws.OP_CLOSE, struct.pack("!H", 1000) + b"\xff"),
        1007,
        "UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("data", "code", "words"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_frames(data: bytes, code: int, words: str) -> None:
    parser = WebSocket(LIMIT)
    parser.receive_data(data + client_frame(ws.OP_TEXT, b"after"))
    events = list(parser.events())
    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert failure.code == code
    assert words.lower() in failure.reason.lower()
    assert parser.closed


def test_malformed_frames_split_byte_by_byte_give_the_same_failure() -> None:
    for _, data, code, _ in MALFORMED:
        parser = WebSocket(LIMIT)
        events: list[ws.Event] = []
        for byte in data:
            parser.receive_data(bytes([byte]))
            events.extend(parser.events())
        assert [type(e) for e in events] == [Failure]
        assert isinstance(events[0], Failure) and events[0].code == code


# -- encoding ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_server_frames_are_unmasked_with_the_right_length_form(size: int) -> None:
    encoded = ws.frame(ws.OP_BINARY, b"b" * size)
    assert encoded[0] == 0x82
    assert not encoded[1] & 0x80
    assert encoded.endswith(b"b" * size)
    assert len(encoded) == size + (2 if size < 126 else 4 if size < 65536 else 10)


def test_close_frames() -> None:
    assert ws.close_frame(None) == b"\x88\x00"
    assert ws.close_frame(1008, "Invalid API key") == b"\x88\x11\x03\xf0Invalid API key"
    long_reason = ws.close_frame(1000, "é" * 100)  # cut to fit, on a character boundary
    assert len(long_reason) == 2 + 124
    assert long_reason[4:].decode() == "é" * 61
    assert ws.close_reply(CloseReceived(4001, "x")) == b"\x88\x02\x0f\xa1"
    assert ws.close_reply(CloseReceived(None, "")) == b"\x88\x00"


def test_unmask_is_an_involution() -> None:
    payload = os.urandom(1001)
    mask = os.urandom(4)
    assert ws.unmask(ws.unmask(payload, mask), mask) == payload
    naive = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert ws.unmask(payload, mask) == naive

"""WebSocket /api/v1/chat/ws on the wire, with `wsproto` over a raw socket: handshakes
(W6), RFC 6455 violations and limits (W2), keep-alive and non-reading peers (W3)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wsproto.events import Ping, Pong

from tests.endpoints.test_chat import contents, history, rules_config
from tests.support.server import TEST_KEY, Running, running_server
from tests.support.waiting import wait_for
from tests.support.wsclient import (
    CloseConnection,
    RawClient,
    client_frame,
    close_payload,
    handshake_response,
)

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
PING_JSON = json.dumps({"t": "ping"}).encode()
PONG_JSON = '{"type": "pong"}'


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_server(config=rules_config(tmp_path_factory.mktemp("ws-wire"))) as running:
        yield running


def head(
    method: str = "GET",
    path: str = "/api/v1/chat/ws",
    *,
    key: str | None = TEST_KEY,
    drop: tuple[str, ...] = (),
    **changes: str,
) -> bytes:
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        **{name.replace("_", "-"): value for name, value in changes.items()},
    }
    if key is not None:
        headers["X-API-Key"] = key
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- handshakes (W6) -------------------------------------------------------------------


def test_accepted_handshake_negotiates_nothing(srv: Running) -> None:
    status, headers, _ = handshake_response(
        srv, head(Sec_WebSocket_Extensions="permessage-deflate; client_max_window_bits")
    )
    assert status == 101
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade"
    assert "sec-websocket-extensions" not in headers
    assert "sec-websocket-protocol" not in headers


@pytest.mark.parametrize(
    ("request_head", "status", "message"),
    [
        (
            head(drop=("Upgrade",)),
            400,
            "This route speaks WebSocket only: send 'Upgrade: websocket'",
        ),
        (head(drop=("Upgrade",), key=None), 401, "Missing API key"),
        (head(Connection="keep-alive"), 400, "A WebSocket handshake needs 'Connection: Upgrade'"),
        (
            head(Sec_WebSocket_Key=base64.b64encode(b"short").decode()),
            400,
            "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters)",
        ),
        (
            head(drop=("Sec-WebSocket-Key",)),
            400,
            "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters)",
        ),
        (
            head(drop=("Sec-WebSocket-Version",)),
            400,
            "Missing header: Sec-WebSocket-Version (use 13)",
        ),
        (
            head(Sec_WebSocket_Version="8"),
            426,
            "Unsupported Sec-WebSocket-Version: only 13 is supported",
        ),
        (head("POST"), 405, "Method not allowed"),
        (
            head(path="/api/v1/chat/sessions"),
            400,
            "This path does not speak WebSocket (the chat socket is /api/v1/chat/ws)",
        ),
        (head(path="/api/v1/chat/wsx"), 404, "Not found"),
        (head(path="/api/v1/chat/wsx", key=None), 401, "Missing API key"),
    ],
)
def test_refused_handshakes(srv: Running, request_head: bytes, status: int, message: str) -> None:
    got, headers, body = handshake_response(srv, request_head)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"status": "error", "message": message, "data": None}
    if status == 426:
        assert headers["sec-websocket-version"] == "13"
    if status == 405:
        assert headers["allow"] == "GET, HEAD, OPTIONS"


def test_a_refused_handshake_leaves_the_server_well(srv: Running) -> None:
    handshake_response(srv, head(Sec_WebSocket_Version="8"))
    with RawClient(srv) as client:
        client.send_raw(client_frame(TEXT, PING_JSON))
        assert client.next_message() == PONG_JSON


# -- frames (W2) -------------------------------------------------------------------------


VIOLATIONS = [
    ("unmasked", client_frame(TEXT, PING_JSON, masked=False), 1002),
    ("rsv1 (no deflate was negotiated)", client_frame(TEXT, PING_JSON, rsv=4), 1002),
    ("rsv3", client_frame(BINARY, PING_JSON, rsv=1), 1002),
    ("opcode 3", client_frame(0x3, b"x"), 1002),
    ("opcode 0xc", client_frame(0xC, b""), 1002),
    ("ping of 126 bytes", client_frame(PING, b"p" * 126), 1002),
    ("fragmented ping", client_frame(PING, b"p", fin=False), 1002),
    ("stray continuation", client_frame(CONTINUATION, b"x"), 1002),
    (
        "text inside a fragmented message",
        client_frame(TEXT, b"{", fin=False) + client_frame(TEXT, b"}"),
        1002,
    ),
    ("64-bit length with the top bit set", client_frame(BINARY, length=1 << 63), 1002),
    ("a header announcing 8 GiB", client_frame(BINARY, length=8 << 30), 1009),
    ("close with a 1-byte payload", client_frame(CLOSE, b"\x03"), 1002),
    ("close code 999", client_frame(CLOSE, close_payload(999)), 1002),
    ("close code 1005", client_frame(CLOSE, close_payload(1005)), 1002),
    ("close code 1006", client_frame(CLOSE, close_payload(1006)), 1002),
    ("close code 2999", client_frame(CLOSE, close_payload(2999)), 1002),
    ("invalid UTF-8", client_frame(TEXT, b'{"t": "\xff"}'), 1007),
    (
        "invalid UTF-8 split across fragments",
        client_frame(TEXT, b'{"t": "\xe2\x82', fin=False) + client_frame(CONTINUATION, b'("}'),
        1007,
    ),
    ("close reason not UTF-8", client_frame(CLOSE, close_payload(1000, b"\xc3")), 1007),
]


@pytest.mark.parametrize(
    ("data", "code"), [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS]
)
def test_protocol_violations_close_with_their_code(srv: Running, data: bytes, code: int) -> None:
    with RawClient(srv) as client:
        client.send_raw(data)
        got, reason, ended = client.close_code()
    assert got == code and reason  # the reason says what was wrong
    assert ended  # and TCP ends at once


def test_a_frame_split_byte_by_byte(srv: Running) -> None:
    message = json.dumps({"t": "ping", "pad": "x" * 70_000}).encode()  # the 64-bit form
    with RawClient(srv) as client:
        data = client_frame(TEXT, message)
        for index in range(14):  # the header and mask, one byte per write
            client.send_raw(data[index : index + 1])
        client.send_raw(data[14:])
        assert client.next_message() == PONG_JSON


def test_fragments_with_control_frames_between_them(srv: Running) -> None:
    with RawClient(srv) as client:
        client.send_raw(
            client_frame(TEXT, b'{"t": ', fin=False)
            + client_frame(PING, b"mid")
            + client_frame(CONTINUATION, b'"pi', fin=False)
            + client_frame(PONG, b"")
            + client_frame(CONTINUATION, b'ng"}')
        )
        pong = client.next_event()
        assert isinstance(pong, Pong) and pong.payload == b"mid"
        assert client.next_message() == PONG_JSON


def test_a_two_mib_message_in_1000_fragments_is_refused(srv: Running) -> None:
    piece = b"a" * 2098
    data = b"".join(
        client_frame(TEXT if n == 0 else CONTINUATION, piece, fin=n == 999) for n in range(1000)
    )
    with RawClient(srv) as client:
        sender = threading.Thread(target=_send_ignoring_errors, args=(client.sock, data))
        sender.start()
        code, reason, _ = client.close_code()
        sender.join()
    assert (code, reason) == (1009, "Message too large (limit 1048576 bytes)")


def test_a_message_at_the_limit_is_read(tmp_path: Path) -> None:
    with running_server(config=rules_config(tmp_path), max_json_bytes=4096) as srv:
        padded = b'{"t": "ping", "p": "' + b"x" * (4096 - 22) + b'"}'
        assert len(padded) == 4096
        with RawClient(srv) as client:
            client.send_raw(client_frame(TEXT, padded))
            assert client.next_message() == PONG_JSON
            client.send_raw(client_frame(TEXT, padded + b" "))
            assert client.close_code()[0] == 1009


def test_the_client_close_code_is_echoed(srv: Running) -> None:
    with RawClient(srv) as client:
        client.send_raw(client_frame(CLOSE, close_payload(4001, b"bye")))
        assert client.close_code()[:2] == (4001, "")
    with RawClient(srv) as client:
        client.send_raw(client_frame(CLOSE))  # no code: an empty close back, never 1005
        event = client.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1005  # wsproto's "none"


def test_a_close_mid_turn_is_echoed_at_once_and_the_turn_saved(srv: Running) -> None:
    with RawClient(srv) as client:
        body = {"username": "closer", "session_id": "close-1", "message": "slow"}
        client.send_raw(client_frame(TEXT, json.dumps(body).encode()))
        assert json.loads(client.next_message())["type"] == "session_id"
        client.send_raw(client_frame(CLOSE, close_payload(1000)))
        assert client.close_code()[0] == 1000
        assert len(history(srv, "close-1")) < 2  # the reply was still being held
    wait_for(lambda: len(history(srv, "close-1")) == 2)
    assert contents(srv, "close-1")[1]["message"] == [{"type": "plain", "text": "held"}]


# -- keep-alive and peers that do not read (W3) ----------------------------------------


def test_silence_gets_a_ping_and_a_mute_peer_is_dropped(tmp_path: Path) -> None:
    options = {"sse_heartbeat": 0.05, "write_timeout": 0.3}
    with running_server(config=rules_config(tmp_path), **options) as srv, RawClient(srv) as client:
        ping = client.next_event()
        assert isinstance(ping, Ping)
        client.send_raw(client_frame(PONG, ping.payload))
        again = client.next_event()  # still alive after answering: pinged again
        assert isinstance(again, Ping)
        started = time.monotonic()
        assert client.next_event() is None  # no answer this time: dropped
        assert 0.25 <= time.monotonic() - started < 3


def test_ten_thousand_pings_without_reading(tmp_path: Path) -> None:
    # Dropped once a pong write waits longer than the write timeout; or, when the kernel
    # stops taking the client's bytes first (both sides' buffers full), by the keepalive
    # ping that then cannot be answered. Either way the server lets go of the socket.
    options = {"write_timeout": 0.3, "sse_heartbeat": 0.2}
    with running_server(config=rules_config(tmp_path), **options) as srv:
        lifecycle = srv.server.lifecycle
        with RawClient(srv, timeout=10) as client:
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            assert lifecycle.active == 1
            pings = client_frame(PING, b"p" * 125) * 100
            sent = 0

            def flood() -> None:
                nonlocal sent
                with contextlib.suppress(OSError):  # until the server lets go of us
                    while True:
                        client.sock.sendall(pings)
                        sent += 100

            sender = threading.Thread(target=flood)
            sender.start()
            wait_for(lambda: sent >= 10_000, timeout=10)
            wait_for(lambda: lifecycle.active == 0, timeout=10)  # dropped
            with contextlib.suppress(OSError):  # wakes a sendall the kernel still holds
                client.sock.shutdown(socket.SHUT_RDWR)
            sender.join()
        # The server is unharmed.
        assert httpx.get(srv.url + "/api/v1/openapi.json").status_code == 200


def _send_ignoring_errors(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server refused the message and stopped reading
        sock.sendall(data)


def test_frames_sent_with_the_handshake_are_read(srv: Running) -> None:
    with srv.connect() as sock:
        sock.sendall(head() + client_frame(TEXT, PING_JSON) + client_frame(PING, b"early"))
        raw = b""
        while not raw.endswith(b"early"):
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
    response, _, frames = raw.partition(b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101 ")
    assert frames == b"\x81" + bytes([len(PONG_JSON)]) + PONG_JSON.encode() + b"\x8a\x05early"

"""Strict HTTP/1.1 at the edge over real sockets (docs/compatibility.md H1-H4): raw bytes,
since no well-behaved client sends these requests. The same rules are checked without a
socket in tests/http/test_strict.py; this module proves them on the wire."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Route
from tests.support.server import TEST_KEY, Running, running_server
from tests.support.wire import body_of, read_until_close, status_of

LIMIT = 1024


async def echo_json(request: Request) -> Response:
    return json_ok(await request.json_object(limit=LIMIT))


async def hello(request: Request) -> Response:
    return json_ok({"hello": True})


@pytest.fixture(scope="module")
def srv() -> Iterator[Running]:
    # A long body deadline: a refusal that waited for it would stand out as a 408.
    routes = {
        "/t/json": {"POST": Route(echo_json, public=True)},
        "/t/hello": {"GET": Route(hello, public=True)},
    }
    with running_server(routes, body_timeout=30.0, max_upload_bytes=LIMIT) as running:
        yield running


def exchange(srv: Running, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send bytes, keep the socket open for writing, read until the server closes."""
    with srv.connect(timeout) as sock:
        sock.sendall(data)
        return read_until_close(sock, timeout)


def envelope(raw: bytes) -> dict[str, object]:
    answer: dict[str, object] = json.loads(body_of(raw))
    return answer


def closes(raw: bytes) -> bool:
    head = raw.partition(b"\r\n\r\n")[0].lower()
    return b"\r\nconnection: close" in head


# -- H1: request smuggling -------------------------------------------------------------

SMUGGLED = b"GET /t/hello HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "head",
    [
        b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"POST /t/json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 60\r\n\r\n",
        b"POST /t/json HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["cl-then-te", "te-then-cl", "te-on-http-1.0"],
)
def test_ambiguous_body_framing_is_refused_and_nothing_after_it_is_answered(
    srv: Running, head: bytes
) -> None:
    answer = exchange(srv, head + b"2\r\n{}\r\n0\r\n\r\n" + SMUGGLED)
    assert status_of(answer) == 400
    assert envelope(answer) == {
        "status": "error",
        "message": "Malformed HTTP request",
        "data": None,
    }
    assert closes(answer)
    assert answer.count(b"HTTP/1.1 ") == 1  # the smuggled GET got no answer


@pytest.mark.parametrize(
    "coding", [b"chunked, gzip", b"gzip, chunked", b"gzip", b"identity"], ids=str
)
def test_transfer_codings_other_than_a_final_chunked_are_400(srv: Running, coding: bytes) -> None:
    raw = b"POST /t/json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + b"\r\n\r\n"
    answer = exchange(srv, raw + b"2\r\n{}\r\n0\r\n\r\n" + SMUGGLED)
    assert status_of(answer) == 400  # RFC 9112 §6.3 (h11 hints 501)
    assert answer.count(b"HTTP/1.1 ") == 1


def test_a_clean_chunked_body_keeps_the_connection(srv: Running) -> None:
    raw = b"POST /t/json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = exchange(
        srv, raw + b'8\r\n{"n": 1}\r\n0\r\n\r\n' + SMUGGLED[:-2] + b"Connection: close\r\n\r\n"
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2


# -- H2: HTTP versions -----------------------------------------------------------------


@pytest.mark.parametrize("version", [b"2.0", b"9.9", b"0.9", b"3.0"])
def test_versions_other_than_http_1_get_505_and_a_close(srv: Running, version: bytes) -> None:
    answer = exchange(srv, b"GET /t/hello HTTP/" + version + b"\r\nHost: x\r\n\r\n" + SMUGGLED)
    assert status_of(answer) == 505
    assert envelope(answer) == {
        "status": "error",
        "message": "HTTP version not supported",
        "data": None,
    }
    assert closes(answer)
    assert answer.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_http_1_versions_are_served(srv: Running, version: bytes) -> None:
    raw = b"GET /t/hello HTTP/" + version + b"\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = exchange(srv, raw)
    assert status_of(answer) == 200
    assert envelope(answer)["data"] == {"hello": True}


# -- H3: Host --------------------------------------------------------------------------

BAD_HOSTS = [
    b"a b",
    b"a/b",
    b"example.com/",
    b"http://example.com",
    b"user@example.com",
    b"a:b:c",
    b"example.com:80x",
    b"[::1",
    b"[zz::1]:80",
    b"[::1]x",
    b"exa%zzmple",
    b"a\tb",
]
GOOD_HOSTS = [
    b"example.com",
    b"example.com:8080",
    b"127.0.0.1:6185",
    b"[::1]:80",
    b"[2001:db8::7]",
    b"[v1.fe80::a+en1]",
    b"host:",
    b"",
    b"xn--bcher-kva.example",
    b"under_score.example",
    b"exa%41mple",
]


@pytest.mark.parametrize("host", BAD_HOSTS, ids=repr)
@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_an_invalid_host_is_400(srv: Running, host: bytes, version: bytes) -> None:
    raw = b"GET /t/hello HTTP/" + version + b"\r\nHost: " + host + b"\r\n\r\n"
    answer = exchange(srv, raw)
    assert status_of(answer) == 400
    assert envelope(answer)["message"] == "Malformed HTTP request"
    assert closes(answer)


@pytest.mark.parametrize("host", GOOD_HOSTS, ids=repr)
def test_a_valid_host_is_served(srv: Running, host: bytes) -> None:
    raw = b"GET /t/hello HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    assert status_of(exchange(srv, raw)) == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /t/hello HTTP/1.1\r\n\r\n",
        b"GET /t/hello HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET /t/hello HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /t/hello HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",  # folded into "a b"
    ],
    ids=["missing", "twice", "twice-on-1.0", "folded"],
)
def test_missing_repeated_or_folded_host_is_400(srv: Running, raw: bytes) -> None:
    answer = exchange(srv, raw)
    assert status_of(answer) == 400
    assert closes(answer)


def test_http_1_0_may_omit_host(srv: Running) -> None:
    assert status_of(exchange(srv, b"GET /t/hello HTTP/1.0\r\n\r\n")) == 200


# -- H4: chunk sizes -------------------------------------------------------------------

CHUNKED_HEAD = b"POST /t/json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
TOO_LARGE = f"Request body too large (limit {LIMIT} bytes)"


def answer_without_finishing(srv: Running, data: bytes) -> tuple[bytes, float]:
    """Send the start of a request and never finish it: the server must answer anyway."""
    with srv.connect() as sock:
        started = time.monotonic()
        sock.sendall(data)
        answer = read_until_close(sock, timeout=5.0)
        return answer, time.monotonic() - started


@pytest.mark.parametrize(
    "body",
    [
        b"401\r\n",  # one byte over the limit, not one byte of it sent
        b"100000\r\n",
        b"fffffffffffffff\r\n",  # 15 digits: the most a size may have
        b"401;name=value\r\n",
        b"200\r\n" + b" " * 0x200 + b"\r\n" + b"201\r\n",  # the running total
    ],
    ids=["just-over", "1MiB", "15-digits", "with-extension", "running-total"],
)
def test_a_chunk_declared_over_the_limit_is_413_at_once(srv: Running, body: bytes) -> None:
    answer, elapsed = answer_without_finishing(srv, CHUNKED_HEAD + body)
    assert status_of(answer) == 413
    assert envelope(answer)["message"] == TOO_LARGE
    assert closes(answer)
    assert elapsed < 5.0  # not the 30 s body deadline


def test_a_chunked_upload_declared_over_the_file_limit_is_413_at_once(srv: Running) -> None:
    boundary = b"b0undary"
    head = (
        b"POST /api/v1/file HTTP/1.1\r\nHost: x\r\nX-API-Key: " + TEST_KEY.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    answer, _ = answer_without_finishing(srv, head + b"1000000\r\n--" + boundary)
    assert status_of(answer) == 413
    assert envelope(answer)["message"] == f"File too large (limit {LIMIT} bytes)"


@pytest.mark.parametrize(
    "body",
    [
        b"FFFFFFFFFFFFFFFFFFFFFFFF\r\n",
        b"7fffffffffffffff\r\n",  # 16 digits
        b"1" * 40,  # no end of line yet: refused as it arrives
        b"00000000000000000000000000001\r\n",
    ],
    ids=["24-digits", "16-digits", "40-digits-no-crlf", "leading-zeros"],
)
def test_huge_chunk_sizes_are_400_at_once(srv: Running, body: bytes) -> None:
    answer, elapsed = answer_without_finishing(srv, CHUNKED_HEAD + body)
    assert status_of(answer) == 400
    assert envelope(answer)["message"] == "Malformed HTTP request"
    assert elapsed < 5.0


def test_a_size_with_leading_zeros_is_only_its_value(srv: Running) -> None:
    body = b'00000000000000000008\r\n{"n": 1}\r\n0\r\n\r\n'
    raw = CHUNKED_HEAD.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n") + body
    answer = exchange(srv, raw)
    assert status_of(answer) == 200
    assert envelope(answer)["data"] == {"n": 1}


# -- request-line length (RFC 9112 §3) and what h11 already enforces --------------------


def test_a_request_target_over_the_head_limit_is_414(srv: Running) -> None:
    target = b"/t/hello?" + b"a" * 20_000
    answer = exchange(srv, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(answer) == 414
    assert envelope(answer)["message"] == "Request target too long"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /t/hello HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET /t/hello HTTP/1.1\r\n Host: x\r\n\r\n",
        b"GET /t/hello HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        b"GET  /t/hello HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
        b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST /t/json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX",
    ],
    ids=[
        "space-before-colon",
        "whitespace-after-start-line",
        "bare-cr",
        "double-space",
        "signed-length",
        "huge-length",
        "conflicting-lengths",
        "bad-chunk-end",
    ],
)
def test_what_h11_refuses_is_400_and_a_close(srv: Running, raw: bytes) -> None:
    """RFC 9112 §5.1, §2.2, §3, §6.3, §7.1: h11 enforces these; the test proves it."""
    answer = exchange(srv, raw + SMUGGLED)
    assert status_of(answer) == 400
    assert envelope(answer)["message"] == "Malformed HTTP request"
    assert answer.count(b"HTTP/1.1 ") == 1


def test_connection_close_from_the_client_is_honoured(srv: Running) -> None:
    raw = b"GET /t/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + SMUGGLED
    answer = exchange(srv, raw)
    assert closes(answer)
    assert answer.count(b"HTTP/1.1 ") == 1  # RFC 9112 §9.6: nothing after it is processed


def test_the_server_still_serves_after_all_of_this(srv: Running) -> None:
    with srv.connect() as sock:
        sock.sendall(b"GET /t/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(read_until_close(sock)) == 200


def test_the_absolute_form_is_accepted(srv: Running) -> None:
    """RFC 9112 §3.2.2: a server must accept it (its host is not ours to judge)."""
    raw = b"GET http://elsewhere.example/t/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = exchange(srv, raw)
    assert status_of(answer) == 200
    assert envelope(answer)["data"] == {"hello": True}

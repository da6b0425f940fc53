"""The HTTP/1.1 core over real sockets: keep-alive, pipelining, HEAD, 100-continue,
limits, deadlines and malformed input. Invariant for bad input: a clean error response
or a clean close, never a crash (the server keeps serving)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Route
from tests.support.server import TEST_KEY, Running, running_server
from tests.support.wire import WireClient, body_of, read_until_close, status_of


async def echo_json(request: Request) -> Response:
    return json_ok(await request.json_object(limit=1024))


async def echo_json_large(request: Request) -> Response:
    return json_ok(await request.json_object(limit=10**6))


async def no_body_read(request: Request) -> Response:
    return json_ok({"ignored": True})


async def explode(request: Request) -> Response:
    raise RuntimeError("boom: secret detail")


async def slow(request: Request) -> Response:
    await anyio.sleep(0.5)
    return json_ok({"slow": True})


async def big_stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4096):
            yield b"x" * 65536

    return Response(200, [(b"content-type", b"text/plain")], chunks())


FOREVER_CLOSED = threading.Event()


async def forever(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await anyio.sleep_forever()
        finally:
            FOREVER_CLOSED.set()

    return Response(200, [(b"content-type", b"text/plain")], chunks())


TEST_ROUTES = {
    "/t/json": {"POST": Route(echo_json, public=True)},
    "/t/json-large": {"POST": Route(echo_json_large, public=True)},
    "/t/ignore": {
        "POST": Route(no_body_read, public=True),
        "GET": Route(no_body_read, public=True),
    },
    "/t/explode": {"GET": Route(explode, public=True)},
    "/t/slow": {"GET": Route(slow, public=True)},
    "/t/big": {"GET": Route(big_stream, public=True)},
    "/t/forever": {"GET": Route(forever, public=True)},
}


@pytest.fixture
def srv() -> Iterator[Running]:
    with running_server(
        TEST_ROUTES, header_timeout=0.5, keepalive_timeout=1.0, body_timeout=0.5, write_timeout=0.5
    ) as running:
        yield running


def still_serving(srv: Running) -> None:
    response = httpx.get(srv.url + "/api/v1/openapi.json", timeout=5)
    assert response.status_code == 200


def exchange(srv: Running, data: bytes) -> bytes:
    with srv.connect() as sock:
        sock.sendall(data)
        return read_until_close(sock)


def test_keep_alive_reuses_one_connection(srv: Running) -> None:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/t/ignore")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["data"] == {"ignored": True}
    conn.close()


def test_pipelined_requests_are_answered_in_order(srv: Running) -> None:
    body = b'{"n": 1}'
    requests = (
        b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n"
        + body
        + b"GET /t/ignore HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with srv.connect() as sock:
        client = WireClient(sock)
        sock.sendall(requests)
        statuses = []
        for _ in range(3):
            client.expect_response_for(b"GET")
            response = client.read_response()
            statuses.append((response.status, response.json()["data"]))
            client.next_cycle()
    assert statuses == [(200, {"n": 1}), (200, {"ignored": True}), (404, None)]


def test_a_client_that_always_has_its_next_request_waiting_starves_nobody(
    srv: Running,
) -> None:
    """Its reads and writes all succeed at once, so only the connection's own yields
    let another client in while it is being served."""
    count = 20_000
    request = b"GET /t/ignore HTTP/1.1\r\nHost: x\r\n\r\n"
    answered = 0

    def pipeline(sock: socket.socket) -> None:
        nonlocal answered
        reader = threading.Thread(target=drain, args=(sock,))
        reader.start()
        sock.sendall(request * count)
        reader.join()

    def drain(sock: socket.socket) -> None:
        nonlocal answered
        while answered < count and (data := sock.recv(1 << 20)):
            answered += data.count(b"HTTP/1.1 200 ")

    with srv.connect() as sock:
        busy = threading.Thread(target=pipeline, args=(sock,))
        busy.start()
        while answered < 100:
            time.sleep(0.001)
        with srv.connect() as other:
            started = time.monotonic()
            other.sendall(request)
            client = WireClient(other)
            client.expect_response_for(b"GET")
            assert client.read_response().status == 200
            waited = time.monotonic() - started
            answered_then = answered
        busy.join()
    assert answered == count
    assert answered_then < count * 0.9, f"answered only after {waited:.3f} s"


def test_a_stream_waiting_for_its_next_piece_ends_when_its_client_hangs_up(
    srv: Running,
) -> None:
    FOREVER_CLOSED.clear()
    with srv.connect() as sock:
        sock.sendall(b"GET /t/forever HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"first" not in received:
            received += sock.recv(4096)
        time.sleep(0.2)  # the stream is waiting for its next piece
    assert FOREVER_CLOSED.wait(2), "the stream outlived its client"
    still_serving(srv)


def test_head_has_get_headers_and_no_body(srv: Running) -> None:
    get = httpx.get(srv.url + "/api/v1/openapi.json")
    raw = exchange(
        srv, b"HEAD /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert status_of(raw) == 200
    assert rest == b""
    assert f"content-length: {len(get.content)}".encode() in head


def test_expect_continue_sent_only_when_the_body_is_read(srv: Running) -> None:
    with srv.connect() as sock:
        sock.sendall(
            b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b'{"a": 2}')
        raw = sock.recv(1000)
        assert b'{"status":"ok","message":null,"data":{"a":2}}' in raw
    with srv.connect() as sock:
        # The body is too large for the handler: refused at once, no 100, no body sent.
        sock.sendall(
            b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        raw = read_until_close(sock)
    assert status_of(raw) == 413
    assert b"100 Continue" not in raw
    assert json.loads(body_of(raw))["message"] == "Request body too large (limit 1024 bytes)"


def test_small_unread_body_keeps_the_connection_alive(srv: Running) -> None:
    with srv.connect() as sock:
        client = WireClient(sock)
        for _ in range(2):
            sock.sendall(b"POST /t/ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            client.expect_response_for(b"POST")
            assert client.read_response().status == 200
            client.next_cycle()


def test_handler_exception_is_a_500_envelope_and_logged(
    srv: Running, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="astrlite"):
        response = httpx.get(srv.url + "/t/explode")
    assert response.status_code == 500
    assert response.content == b'{"status":"error","message":"Internal server error","data":null}\n'
    assert "boom: secret detail" in caplog.text
    still_serving(srv)


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),
            400,
            "Malformed HTTP request",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
            431,
            "Request headers too large",
        ),
        (
            b"GET /api/v1/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
            "Malformed request target",
        ),
    ],
    ids=["tls-hello", "huge-header", "bad-percent"],
)
def test_malformed_requests_get_a_clean_error(
    srv: Running, raw: bytes, status: int, message: str
) -> None:
    """A few on the wire; the whole table runs in memory (tests/http/test_connection.py)."""
    answer = exchange(srv, raw)
    assert status_of(answer) == status
    assert json.loads(body_of(answer)) == {"status": "error", "message": message, "data": None}
    still_serving(srv)


def test_body_longer_than_declared_poisons_only_its_connection(srv: Running) -> None:
    answer = exchange(
        srv, b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}EXTRA JUNK\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 400 " in answer  # the extra bytes were read as a (bad) next request
    still_serving(srv)


def test_bare_crlf_is_ignored_before_a_request_or_times_out_alone(srv: Running) -> None:
    answer = exchange(
        srv, b"\r\n\r\nGET /t/ignore HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status_of(answer) == 200  # RFC 9112 §2.2: leading empty lines are ignored
    assert exchange(srv, b"\r\n") == b""  # nothing but an empty line: closed when idle
    with srv.connect() as sock:
        sock.sendall(b"\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock) == b""  # the client left: a clean close
    still_serving(srv)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"n": ' + b"7" * 10_000 + b"}",
        b"\xff\xfe{}",
    ],
    ids=["empty", "invalid", "array", "string", "null", "deep", "huge-number", "bad-utf8"],
)
def test_json_bodies_that_are_not_objects(body: bytes) -> None:
    with running_server(TEST_ROUTES) as srv:
        response = httpx.post(srv.url + "/t/json-large", content=body)
    assert response.status_code == 200  # a business error: 200 unless --http-errors
    assert response.json()["message"] == "Request body must be a JSON object"


def test_headers_trickled_time_out(srv: Running) -> None:
    with srv.connect() as sock:
        started = time.monotonic()
        for byte in b"GET /t/ignore HTTP/1.1\r\nHost: x\r\n":
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - started > 0.8:
                break
        answer = read_until_close(sock)
    assert status_of(answer) == 408
    assert json.loads(body_of(answer))["message"] == "Request timed out"
    still_serving(srv)


def test_body_trickled_times_out(srv: Running) -> None:
    with srv.connect() as sock:
        sock.sendall(b"POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        for _ in range(12):
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.1)
        answer = read_until_close(sock)
    assert status_of(answer) == 408
    still_serving(srv)


def test_idle_connection_is_closed_after_keepalive(srv: Running) -> None:
    with srv.connect() as sock:
        started = time.monotonic()
        assert read_until_close(sock) == b""
        assert time.monotonic() - started < 3


def test_client_that_never_reads_is_dropped(srv: Running) -> None:
    with srv.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /t/big HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        still_serving(srv)  # served while the stalled stream is pending
        deadline = started + 10
        while srv.server.lifecycle.active > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.server.lifecycle.active <= 1  # the stalled connection was dropped


def test_thousands_of_idle_connections_do_not_slow_others() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 5000:
        pytest.skip("needs 5000 descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 5000), hard))
    with running_server(TEST_ROUTES, header_timeout=30) as srv:
        idle = [srv.connect() for _ in range(2000)]
        try:
            deadline = time.monotonic() + 10
            while srv.server.lifecycle.active < 2000 and time.monotonic() < deadline:
                time.sleep(0.05)
            with httpx.Client() as client:
                timings = []
                for _ in range(20):
                    started = time.perf_counter()
                    assert client.get(srv.url + "/t/ignore").status_code == 200
                    timings.append(time.perf_counter() - started)
            assert sorted(timings)[10] < 0.05
        finally:
            for sock in idle:
                sock.close()


def test_connection_cap_answers_503() -> None:
    with running_server(TEST_ROUTES, max_connections=3, header_timeout=5) as srv:
        held = [srv.connect() for _ in range(3)]
        deadline = time.monotonic() + 5
        while srv.server.lifecycle.active < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            answer = exchange(srv, b"GET /t/ignore HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            for sock in held:
                sock.close()
        assert status_of(answer) == 503
        assert json.loads(body_of(answer))["message"] == "Server busy, try again later"


def test_graceful_shutdown_lets_in_flight_requests_finish() -> None:
    results: list[int] = []
    with running_server(TEST_ROUTES, shutdown_grace=5) as srv:

        def call() -> None:
            results.append(httpx.get(srv.url + "/t/slow", timeout=5).status_code)

        worker = threading.Thread(target=call)
        worker.start()
        deadline = time.monotonic() + 5
        while srv.server.lifecycle.busy == 0:  # until the request is being answered
            assert time.monotonic() < deadline, "the request never arrived"
            time.sleep(0.005)
        srv.portal.call(srv.server.stop)
        worker.join(5)
        time.sleep(0.1)
        with pytest.raises(OSError):
            srv.connect(timeout=1).close()
    assert results == [200]


def test_access_log_redacts_query_keys(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="astrlite.access"), running_server() as srv:
        httpx.get(srv.url + f"/api/v1/im/bots?api_key={TEST_KEY}&key={TEST_KEY}&x=1")
    lines = [r.getMessage() for r in caplog.records if r.name == "astrlite.access"]
    assert lines and '"GET /api/v1/im/bots?api_key=REDACTED&key=REDACTED&x=1"' in lines[0]
    assert TEST_KEY not in caplog.text


async def slow_reader(request: Request) -> Response:
    total = 0
    async for chunk in request.stream(1 << 30, "too large"):
        total += len(chunk)
        await anyio.sleep(0.002)
    return json_ok({"received": total})


def rss_kib() -> int:
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_fast_client_cannot_make_the_server_buffer_its_body() -> None:
    size = 96 * 1024 * 1024
    with running_server(
        {"/t/slow-reader": {"POST": Route(slow_reader, public=True)}}, body_timeout=60
    ) as srv:
        baseline = rss_kib()
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with srv.connect(timeout=30) as sock:
                head = f"POST /t/slow-reader HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
                sock.sendall(head.encode())
                block = b"x" * (1024 * 1024)
                for _ in range(size // len(block)):
                    sock.sendall(block)
                client = WireClient(sock)
                client.expect_response_for(b"POST")
                assert client.read_response().json()["data"] == {"received": size}
        finally:
            done.set()
            sampler.join()
    # Without backpressure the whole body would queue in the server (96 MiB).
    assert peak - baseline < 24 * 1024

"""The connection without a socket: a real h11 client over a memory transport. Keep-alive,
pipelining, HEAD, 100-continue, every deadline (tiny injected timeouts), the limits,
errors before and after the response head, and shutdown."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from typing import ClassVar

import anyio
import h11
import pytest

from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Route
from astrlite.sse import LastChunk
from tests.support.memory import Harness, MemoryClient, serve_in_memory

pytestmark = pytest.mark.anyio

LIMIT = 1024
TICK = 0.05  # every injected deadline; a test waits at most a few of these
GIVE_UP = 5.0  # a test that hangs fails instead


async def echo_json(request: Request) -> Response:
    return json_ok(await request.json_object(limit=LIMIT))


async def ignore_body(request: Request) -> Response:
    return json_ok({"ignored": True})


async def explode(request: Request) -> Response:
    raise RuntimeError("boom: secret detail")


CLOSED: list[bytes] = []  # the last piece of each stream_of body whose generator closed


def stream_of(pieces: list[bytes], *, fail_after: int | None = None) -> Route:
    async def handler(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            try:
                for index, piece in enumerate(pieces):
                    if index == fail_after:
                        raise RuntimeError("the body failed half-way")
                    yield piece
            finally:
                CLOSED.append(pieces[-1])

        return Response(200, [(b"content-type", b"text/plain")], body())

    return Route(handler, public=True)


class SlowGate:
    """What /slow waits for after its empty first piece (set by the test)."""

    release: anyio.Event | None = None


async def slow(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b""  # nothing yet: the head goes at once
        assert SlowGate.release is not None
        await SlowGate.release.wait()
        yield LastChunk(b"late")

    return Response(200, [(b"content-type", b"text/plain")], body())


FILE_CONTENT = bytes(range(256)) * 1000


class FileSlice:
    """A FileBody over a temporary file; `opened` lists them, to check each was closed."""

    opened: ClassVar[list[FileSlice]] = []

    def __init__(self, start: int, length: int) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (aclose closes it)
        self.file.write(FILE_CONTENT)
        self.file.flush()
        self.start, self.length = start, length
        FileSlice.opened.append(self)

    def file_slice(self) -> tuple[int, int, int]:
        return self.file.fileno(), self.start, self.length

    async def aclose(self) -> None:
        self.file.close()


def file_route(start: int, length: int, *, chunked: bool = False) -> Route:
    async def handler(request: Request) -> Response:
        body = FileSlice(start, length)
        return Response(200, [], body, content_length=None if chunked else length)

    return Route(handler, public=True)


async def no_content(request: Request) -> Response:
    return Response(204)


async def not_modified(request: Request) -> Response:
    return Response(304, [(b"etag", b'"x"')])


ROUTES = {
    "/empty": {"DELETE": Route(no_content, public=True), "GET": Route(not_modified, public=True)},
    "/json": {"POST": Route(echo_json, public=True)},
    "/ignore": {"POST": Route(ignore_body, public=True), "GET": Route(ignore_body, public=True)},
    "/explode": {"GET": Route(explode, public=True)},
    "/stream": {"GET": stream_of([b"one ", b"two ", b"three"])},
    "/broken": {"GET": stream_of([b"one ", b"two ", b"three"], fail_after=2)},
    "/big": {"GET": stream_of([b"x" * 65536] * 64)},
    "/ending": {"GET": stream_of([b"one ", b"two ", LastChunk(b"three"), b"never sent"])},
    "/slow": {"GET": Route(slow, public=True)},
    "/file": {"GET": file_route(0, len(FILE_CONTENT))},
    "/file-part": {"GET": file_route(1000, 70_000)},
    "/file-chunked": {"GET": file_route(5, 100_000, chunked=True)},
    "/file-shrunk": {"GET": file_route(0, len(FILE_CONTENT) + 10)},
}


async def serving(timeout: float) -> AsyncIterator[Harness]:
    with anyio.fail_after(GIVE_UP):
        async with serve_in_memory(
            ROUTES,
            header_timeout=timeout,
            keepalive_timeout=timeout,
            body_timeout=timeout,
            write_timeout=timeout,
            max_header_bytes=1024,
        ) as harness:
            yield harness


@pytest.fixture
async def server() -> AsyncIterator[Harness]:
    """Deadlines far away: nothing here may depend on one firing (or not) in time."""
    async for harness in serving(GIVE_UP * 2):
        yield harness


@pytest.fixture
async def impatient() -> AsyncIterator[Harness]:
    """Every deadline is one tick."""
    async for harness in serving(TICK):
        yield harness


def envelope(message: str) -> dict[str, object]:
    return {"status": "error", "message": message, "data": None}


# -- keep-alive, pipelining, HEAD ------------------------------------------------------


async def test_keep_alive_serves_many_requests_on_one_connection(server: Harness) -> None:
    client = server.connect()
    for n in range(3):
        client.request("POST", "/json", body=b'{"n": %d}' % n)
        reply = await client.response()
        assert (reply.status, reply.json()["data"]) == (200, {"n": n})
        assert reply.header(b"connection") is None
    assert not client.transport.closed


async def test_pipelined_requests_are_answered_in_order(server: Harness) -> None:
    client = server.connect()
    client.send_raw(
        b'POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n{"n": 1}'
        b"GET /ignore HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answers = []
    for _ in range(3):
        reply = await client.response()
        answers.append((reply.status, reply.json()["data"]))
        client.expect()
    assert answers == [(200, {"n": 1}), (200, {"ignored": True}), (404, None)]


async def test_head_has_the_get_headers_and_no_body(server: Harness) -> None:
    client = server.connect()
    client.request("GET", "/ignore")
    get = await client.response()
    client.request("HEAD", "/ignore")
    head = await client.response()
    assert (head.status, head.body) == (200, b"")
    assert head.header(b"content-length") == get.header(b"content-length") != b"0"
    assert head.header(b"content-type") == get.header(b"content-type")


async def test_head_of_a_streamed_body_sends_no_body(server: Harness) -> None:
    client = server.connect()
    client.request("HEAD", "/stream")
    reply = await client.response()
    assert (reply.status, reply.body) == (200, b"")
    client.request("GET", "/stream")
    assert (await client.response()).body == b"one two three"  # still in step


async def test_the_head_leaves_with_the_first_piece_and_the_last_piece_with_the_end(
    server: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = server.connect()
    writes: list[bytes] = []
    send = client.transport.try_send

    def counted(data: memoryview) -> int:
        writes.append(bytes(data))
        return send(data)

    monkeypatch.setattr(client.transport, "try_send", counted)
    client.request("GET", "/ending")
    reply = await client.response()
    assert reply.body == b"one two three"  # nothing after the LastChunk
    assert b"never sent" in CLOSED  # the body is closed, though it had more to give
    assert writes[0].startswith(b"HTTP/1.1 200 ") and writes[0].endswith(b"4\r\none \r\n")
    assert writes[-1] == b"5\r\nthree\r\n0\r\n\r\n"
    assert len(writes) == 3
    client.request("GET", "/stream")  # the connection is still in step
    assert (await client.response()).body == b"one two three"


async def test_a_body_with_nothing_yet_gets_its_head_out_at_once(server: Harness) -> None:
    SlowGate.release = anyio.Event()
    client = server.connect()
    client.request("GET", "/slow")
    head = await client.next_event()
    assert isinstance(head, h11.Response) and head.status_code == 200
    SlowGate.release.set()
    events = [await client.next_event(), await client.next_event()]
    assert isinstance(events[0], h11.Data) and events[0].data == b"late"
    assert isinstance(events[1], h11.EndOfMessage)


async def test_a_file_body_is_sent_with_send_file_whole_ranged_or_chunked(
    server: Harness,
) -> None:
    client = server.connect(capacity=4096)  # many partial sends
    for path, expected, length in (
        ("/file", FILE_CONTENT, str(len(FILE_CONTENT)).encode()),
        ("/file-part", FILE_CONTENT[1000:71_000], b"70000"),
        ("/file-chunked", FILE_CONTENT[5:100_005], None),
    ):
        before = client.transport.sent_from_files
        client.request("GET", path)
        reply = await client.response()
        assert reply.body == expected
        assert reply.header(b"content-length") == length
        assert client.transport.sent_from_files - before == len(expected)
    client.request("HEAD", "/file")
    assert (await client.response()).body == b""
    assert all(opened.file.closed for opened in FileSlice.opened)


async def test_a_file_shorter_than_its_head_said_closes_the_connection(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    client = server.connect()
    client.request("GET", "/file-shrunk")
    head = await client.head()
    assert head.status_code == 200
    await client.closed_by_server()  # before the promised length
    assert "file shrank while sent (10 bytes missing)" in caplog.text
    assert not [record for record in caplog.records if record.exc_info]
    assert FileSlice.opened[-1].file.closed


async def test_connection_close_is_honoured(server: Harness) -> None:
    client = server.connect()
    client.request("GET", "/ignore", headers=[("connection", "close")])
    reply = await client.response()
    assert reply.header(b"connection") == b"close"
    assert await client.closed_by_server() == b""


async def test_http_1_0_gets_a_close_delimited_stream_never_chunked(server: Harness) -> None:
    """RFC 9112 §6.1: no Transfer-Encoding in a response to HTTP/1.0."""
    client = server.connect()
    client.transport.client_send(b"GET /stream HTTP/1.0\r\n\r\n")
    raw = await client.closed_by_server()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"one two three"


async def test_204_and_304_carry_no_content_length(server: Harness) -> None:
    """RFC 9110 §8.6: never on a 204; on a 304 only a 200's size, unknown here."""
    client = server.connect()
    for method, status in (("DELETE", 204), ("GET", 304)):
        client.request(method, "/empty")
        reply = await client.response()
        assert (reply.status, reply.body) == (status, b"")
        assert reply.header(b"content-length") is None
        assert reply.header(b"transfer-encoding") is None
    client.request("GET", "/ignore")
    assert (await client.response()).status == 200  # still in step


# -- 100-continue ----------------------------------------------------------------------


async def test_100_continue_is_sent_when_the_body_is_read(server: Harness) -> None:
    client = server.connect()
    client.send(
        h11.Request(
            method="POST",
            target="/json",
            headers=[("host", "x"), ("content-length", "2"), ("expect", "100-continue")],
        )
    )
    event = await client.next_event()
    assert isinstance(event, h11.InformationalResponse) and event.status_code == 100
    client.send(h11.Data(data=b"{}"), h11.EndOfMessage())
    reply = await client.response()
    assert reply.status == 200


async def test_no_100_continue_when_the_body_is_not_wanted(server: Harness) -> None:
    client = server.connect()
    client.send(
        h11.Request(
            method="POST",
            target="/ignore",
            headers=[("host", "x"), ("content-length", "5"), ("expect", "100-continue")],
        )
    )
    reply = await client.response()
    assert (reply.status, reply.informational) == (200, [])
    assert reply.header(b"connection") == b"close"  # the body was never sent: close


async def test_no_100_continue_before_a_declared_length_over_the_limit(server: Harness) -> None:
    client = server.connect()
    client.send(
        h11.Request(
            method="POST",
            target="/json",
            headers=[("host", "x"), ("content-length", "4096"), ("expect", "100-continue")],
        )
    )
    reply = await client.response()
    assert (reply.status, reply.informational) == (413, [])
    assert reply.json() == envelope(f"Request body too large (limit {LIMIT} bytes)")


# -- bodies ------------------------------------------------------------------------------


async def test_a_small_unread_body_is_drained_and_the_connection_kept(server: Harness) -> None:
    client = server.connect()
    for _ in range(2):
        client.request("POST", "/ignore", body=b"hello")
        assert (await client.response()).status == 200
    assert not client.transport.closed


async def test_a_chunked_body_is_read(server: Harness) -> None:
    client = server.connect()
    client.send(
        h11.Request(
            method="POST", target="/json", headers=[("host", "x"), ("transfer-encoding", "chunked")]
        ),
        h11.Data(data=b'{"a":'),
        h11.Data(data=b" 1}"),
        h11.EndOfMessage(),
    )
    reply = await client.response()
    assert reply.json()["data"] == {"a": 1}
    assert not client.transport.closed


async def test_a_body_over_the_limit_while_streaming_is_413(server: Harness) -> None:
    client = server.connect()
    client.send(
        h11.Request(
            method="POST", target="/json", headers=[("host", "x"), ("transfer-encoding", "chunked")]
        )
    )
    for _ in range(3):  # each declared and sent in pieces: the total passes the limit
        client.send(h11.Data(data=b" " * 400))
    reply = await client.response()
    assert reply.status == 413
    assert reply.header(b"connection") == b"close"


# -- errors ------------------------------------------------------------------------------


async def test_a_handler_exception_is_a_500_and_the_connection_lives(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    client = server.connect()
    with caplog.at_level(logging.ERROR, logger="astrlite"):
        client.request("GET", "/explode")
        reply = await client.response()
    assert (reply.status, reply.json()) == (500, envelope("Internal server error"))
    assert b"secret" not in reply.body
    assert "boom: secret detail" in caplog.text
    client.request("GET", "/ignore")
    assert (await client.response()).status == 200


async def test_an_error_after_the_head_truncates_the_response_and_closes(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/compatibility.md H7: the status is gone; the client must see a broken body."""
    client = server.connect()
    with caplog.at_level(logging.ERROR, logger="astrlite"):
        client.request("GET", "/broken")
        head = await client.head()
        assert head.status_code == 200
        body = bytearray()
        with pytest.raises(h11.RemoteProtocolError):
            while True:
                event = await client.next_event()
                assert not isinstance(event, h11.EndOfMessage)
                if isinstance(event, h11.Data):
                    body += event.data
    assert body == b"one two "
    assert client.transport.closed
    assert "the body failed half-way" in caplog.text


async def test_a_client_that_resets_mid_stream_ends_the_connection_quietly(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    client = server.connect(capacity=65536)
    with caplog.at_level(logging.ERROR, logger="astrlite"):
        client.request("GET", "/big")
        await client.head()
        client.transport.client_send_reset()
        await client.transport.wait_closed()
    assert "crashed" not in caplog.text


# -- deadlines (each a few ticks) --------------------------------------------------------


async def test_a_head_that_stops_arriving_is_408(impatient: Harness) -> None:
    client = impatient.connect()
    client.send_raw(b"GET /ignore HTTP/1.1\r\nHost:")
    reply = await client.response()
    assert (reply.status, reply.json()) == (408, envelope("Request timed out"))
    await client.closed_by_server()


async def test_a_connection_that_never_speaks_is_closed_silently(impatient: Harness) -> None:
    client = impatient.connect()
    assert await client.closed_by_server() == b""


async def test_an_idle_keep_alive_connection_is_closed_silently(impatient: Harness) -> None:
    client = impatient.connect()
    client.request("GET", "/ignore")
    assert (await client.response()).status == 200
    assert await client.closed_by_server() == b""


async def test_a_body_that_stops_arriving_is_408(impatient: Harness) -> None:
    client = impatient.connect()
    client.send_raw(
        b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", method=b"POST"
    )
    reply = await client.response()
    assert (reply.status, reply.json()) == (408, envelope("Request timed out"))
    await client.closed_by_server()


async def test_a_chunked_body_that_stops_arriving_is_408(impatient: Harness) -> None:
    client = impatient.connect()
    client.send_raw(
        b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{",
        method=b"POST",
    )
    assert (await client.response()).status == 408


async def test_a_client_that_does_not_read_is_dropped_after_the_write_deadline(
    impatient: Harness,
) -> None:
    client = impatient.connect(capacity=4096)
    client.request("GET", "/big")
    await client.transport.wait_closed()  # within the write deadline, never reading


async def test_a_client_that_does_not_read_a_file_is_dropped_after_the_write_deadline(
    impatient: Harness,
) -> None:
    client = impatient.connect(capacity=4096)
    client.request("GET", "/file")
    await client.transport.wait_closed()
    assert FileSlice.opened[-1].file.closed


async def test_a_slow_reader_within_the_deadline_gets_everything() -> None:
    async with serve_in_memory(ROUTES, write_timeout=GIVE_UP) as server:
        client = server.connect(capacity=4096)
        client.request("GET", "/big")
        reply = await client.response()
        assert len(reply.body) == 64 * 65536


# -- limits ------------------------------------------------------------------------------


async def test_headers_over_the_limit_are_431_in_one_read_or_several(server: Harness) -> None:
    whole = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 2000 + b"\r\n\r\n"
    for pieces in ([whole], [whole[:600], whole[600:1200], whole[1200:]]):
        client = server.connect()
        client.expect()
        for piece in pieces:
            client.transport.client_send(piece)
            await client.transport.wait_received(client.transport.received + len(piece))
        reply = await client.response()
        assert (reply.status, reply.json()) == (431, envelope("Request headers too large"))
        await client.closed_by_server()


async def test_a_request_line_over_the_limit_is_414_in_one_read_or_several(
    server: Harness,
) -> None:
    whole = b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for pieces in ([whole], [whole[:600], whole[600:1200], whole[1200:]]):
        client = server.connect()
        client.expect()
        for piece in pieces:
            if client.transport.closed:
                break
            client.transport.client_send(piece)
            await client.transport.wait_received(client.transport.received + len(piece))
        reply = await client.response()
        assert (reply.status, reply.json()) == (414, envelope("Request target too long"))


# -- malformed input: a clean error and a close, or a clean error on a live connection ---


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),
            400,
            "Malformed HTTP request",
        ),
        (b"GARBAGE GARBAGE GARBAGE\r\n\r\n", 400, "Malformed HTTP request"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 2000 + b"\r\n\r\n",
            431,
            "Request headers too large",
        ),
        (
            b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
            400,
            "Malformed HTTP request",
        ),
        (
            b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",
            400,
            "Malformed HTTP request",
        ),
        (
            b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
            400,
            "Malformed HTTP request",
        ),
        (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Malformed request target"),
        (b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Malformed request target"),
        (b"GET /p?api_key=%e2%28 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Malformed request target"),
        (b"GET /p?x=%4 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Malformed request target"),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Malformed request target"),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 400, "Malformed request target"),
    ],
    ids=[
        "tls-hello",
        "garbage",
        "huge-header",
        "conflicting-cl",
        "negative-cl",
        "bad-chunked",
        "bad-percent",
        "bad-utf8-path",
        "bad-utf8-query",
        "short-percent",
        "asterisk-form",
        "authority-form",
    ],
)
async def test_malformed_requests_get_a_clean_error(
    server: Harness, raw: bytes, status: int, message: str
) -> None:
    client = server.connect()
    client.send_raw(raw, method=raw.split(b" ", 1)[0] if raw[:1].isalpha() else b"GET")
    reply = await client.response()
    assert (reply.status, reply.json()) == (status, envelope(message))
    if message == "Malformed request target":  # the framing was fine: the connection lives
        client.request("GET", "/ignore")
        assert (await client.response()).status == 200
    else:
        await client.closed_by_server()


async def test_expect_100_continue_on_http_1_0_is_ignored(server: Harness) -> None:
    """RFC 9110 §10.1.1 (h11 enforces it)."""
    client = server.connect()
    client.transport.client_send(
        b"POST /json HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}"
    )
    raw = await client.closed_by_server()
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b" 100 " not in raw.partition(b"\r\n")[0]


# -- shutdown ----------------------------------------------------------------------------


async def test_stopping_closes_idle_connections_and_finishes_busy_ones(server: Harness) -> None:
    idle = server.connect()
    busy = server.connect()
    busy.send(
        h11.Request(method="POST", target="/json", headers=[("host", "x"), ("content-length", "8")])
    )
    await busy.transport.wait_received(1)
    server.lifecycle.stop()
    assert await idle.closed_by_server() == b""
    busy.send(h11.Data(data=b'{"n": 2}'), h11.EndOfMessage())
    reply = await busy.response()
    assert (reply.status, reply.header(b"connection")) == (200, b"close")


async def test_every_connection_ends_when_its_client_leaves(server: Harness) -> None:
    clients: list[MemoryClient] = [server.connect() for _ in range(5)]
    for client in clients:
        client.transport.client_send_eof()
    for client in clients:
        await client.transport.wait_closed()

"""Strict HTTP/1.1 at the edge through the memory transport (docs/compatibility.md H1-H4):
the same rules as tests/http/test_strict_sockets.py, here with exact control over which
bytes the server has when it decides."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Route
from tests.support.memory import Harness, MemoryClient, serve_in_memory

pytestmark = pytest.mark.anyio

LIMIT = 1024
GIVE_UP = 5.0
SMUGGLED = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
MALFORMED = {"status": "error", "message": "Malformed HTTP request", "data": None}
TOO_LARGE = {
    "status": "error",
    "message": f"Request body too large (limit {LIMIT} bytes)",
    "data": None,
}


async def echo_json(request: Request) -> Response:
    return json_ok(await request.json_object(limit=LIMIT))


async def hello(request: Request) -> Response:
    return json_ok({"hello": True})


ROUTES = {
    "/json": {"POST": Route(echo_json, public=True)},
    "/hello": {"GET": Route(hello, public=True)},
}


@pytest.fixture
async def server() -> AsyncIterator[Harness]:
    # No deadline can fire during a test: every refusal here must come from the bytes.
    with anyio.fail_after(GIVE_UP):
        async with serve_in_memory(ROUTES, body_timeout=60.0, header_timeout=60.0) as harness:
            yield harness


async def refused(client: MemoryClient) -> tuple[int, object]:
    """The one answer, then the close; nothing after it was answered."""
    reply = await client.response()
    assert reply.header(b"connection") == b"close"
    assert await client.closed_by_server() == b""
    return reply.status, reply.json()


# -- H1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n",
        b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n",
        b"POST /json HTTP/1.0\r\nTransfer-Encoding: chunked\r\n",
        b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n",
        b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n",
        # RFC 9112 §7: chunked may be applied only once.
        b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n",
    ],
    ids=["cl-te", "te-cl", "te-http-1.0", "chunked-not-last", "unknown-coding", "chunked-twice"],
)
async def test_untrustworthy_framing_is_400_and_closes(server: Harness, head: bytes) -> None:
    client = server.connect()
    client.send_raw(head + b"\r\n2\r\n{}\r\n0\r\n\r\n" + SMUGGLED, method=b"POST")
    assert await refused(client) == (400, MALFORMED)


# -- H2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [b"0.9", b"2.0", b"9.9"])
async def test_other_major_versions_are_505(server: Harness, version: bytes) -> None:
    client = server.connect()
    client.send_raw(b"GET /hello HTTP/" + version + b"\r\nHost: x\r\n\r\n" + SMUGGLED)
    status, body = await refused(client)
    assert (status, body) == (
        505,
        {"status": "error", "message": "HTTP version not supported", "data": None},
    )


async def test_http_1_2_is_not_supported(server: Harness) -> None:
    client = server.connect()
    client.send_raw(b"GET /hello HTTP/1.2\r\nHost: x\r\n\r\n")
    reply = await client.response()
    assert reply.status == 505


# -- H3 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host_lines",
    [b"", b"Host: a\r\nHost: a\r\n", b"Host: a b\r\n", b"Host: a/b\r\n", b"Host: [::g]\r\n"],
    ids=["missing", "twice", "space", "slash", "bad-ipv6"],
)
async def test_host_must_be_one_valid_value(server: Harness, host_lines: bytes) -> None:
    client = server.connect()
    client.send_raw(b"GET /hello HTTP/1.1\r\n" + host_lines + b"\r\n")
    assert await refused(client) == (400, MALFORMED)


# -- H4 ----------------------------------------------------------------------------------

CHUNKED = b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([b"401\r\n"], (413, TOO_LARGE)),
        ([b"4", b"01", b"\r", b"\n"], (413, TOO_LARGE)),
        ([b"200\r\n" + b" " * 0x200 + b"\r\n", b"201\r\n"], (413, TOO_LARGE)),
        ([b"1" * 8, b"1" * 8], (400, MALFORMED)),
        ([b"f" * 30 + b"\r\n"], (400, MALFORMED)),
    ],
    ids=["one-chunk", "size-in-pieces", "running-total", "digits-in-pieces", "30-digits"],
)
async def test_chunk_sizes_are_judged_as_they_arrive(
    server: Harness, pieces: list[bytes], expected: tuple[int, object]
) -> None:
    client = server.connect()
    client.send_raw(CHUNKED, method=b"POST")
    for piece in pieces:
        client.transport.client_send(piece)
    assert await refused(client) == expected


async def test_a_declared_chunk_is_refused_before_any_of_its_bytes(server: Harness) -> None:
    client = server.connect()
    client.send_raw(CHUNKED + b"100000\r\n" + b"x" * 100, method=b"POST")
    reply = await client.response()
    assert (reply.status, reply.json()) == (413, TOO_LARGE)


async def test_a_chunked_body_within_the_limit_is_served(server: Harness) -> None:
    client = server.connect()
    client.send_raw(CHUNKED + b"400\r\n" + b" " * 0x3FE + b"{}\r\n0\r\n\r\n", method=b"POST")
    reply = await client.response()
    assert (reply.status, reply.json()["data"]) == (200, {})
    client.expect()
    client.transport.client_send(SMUGGLED)
    assert (await client.response()).status == 200  # the connection lives on


async def test_an_http2_prior_knowledge_preface_gets_505(server: Harness) -> None:
    client = server.connect()
    client.send_raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    status, _ = await refused(client)
    assert status == 505

"""Response bodies read past h11: the chunked decoder, its hand-over to h11 at the end of
the body (the connection reused), and every other framing left to h11."""

from __future__ import annotations

from typing import Any

import anyio
import h11
import pytest
from anyio.abc import ByteStream

from astrlite.outbound import HttpClientError
from astrlite.outbound.chunked import MAX_LINE_BYTES, ChunkedBody
from astrlite.outbound.client import Client
from astrlite.outbound.connection import Conn, OutgoingRequest, exchange, request_head
from astrlite.outbound.urls import parse_url
from tests.fakes.http_server import (
    LAST_CHUNK,
    Handler,
    Received,
    chunk,
    chunked_head,
    response,
    serve,
    wait_until_closed,
)

DEADLINE = 5
BODY = (
    b"5;name=value\r\nhello\r\n"  # an extension with a value
    b'1 ; a ; b="q"\r\n \r\n'  # whitespace before ";", several extensions
    b"A\r\n0123456789\r\n"  # an upper-case hex digit
    b"0;last\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n"  # trailer fields, skipped
)
PAYLOAD = b"hello 0123456789"

pytestmark = pytest.mark.anyio


def decode(*pieces: bytes) -> tuple[bytes, ChunkedBody]:
    body = ChunkedBody()
    return b"".join(body.feed(piece) for piece in pieces), body


# -- the decoder --------------------------------------------------------------------------


def test_whole_body_in_one_read() -> None:
    payload, body = decode(BODY + b"stray")
    assert (payload, body.done, body.error, body.leftover) == (PAYLOAD, True, None, b"stray")


@pytest.mark.parametrize("at", range(1, len(BODY)))
def test_body_split_at_every_byte(at: int) -> None:
    payload, body = decode(BODY[:at], BODY[at:])
    assert (payload, body.done, body.error, body.leftover) == (PAYLOAD, True, None, b"")


def test_body_one_byte_per_read() -> None:
    payload, body = decode(*(BODY[i : i + 1] for i in range(len(BODY))))
    assert (payload, body.done, body.error) == (PAYLOAD, True, None)


def test_data_of_a_chunk_is_handed_out_before_the_chunk_ends() -> None:
    body = ChunkedBody()
    assert body.feed(b"a\r\n0123") == b"0123"
    assert body.feed(b"456789\r\n") == b"456789"
    assert not body.done
    assert body.feed(LAST_CHUNK) == b""
    assert body.done


def test_nothing_is_taken_after_the_end() -> None:
    payload, body = decode(b"0\r\n\r\n", b"more")
    assert (payload, body.done, body.leftover) == (b"", True, b"")


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        (b"zz\r\n", "chunk size 'zz' is not a hex number"),
        (b"0x5\r\nhello\r\n", "chunk size '0x5' is not a hex number"),
        (b"+5\r\nhello\r\n", "chunk size '+5' is not a hex number"),
        (b"-1\r\n", "chunk size '-1' is not a hex number"),
        (b" 5\r\nhello\r\n", "chunk size ' 5' is not a hex number"),
        (b"5_0\r\n", "chunk size '5_0' is not a hex number"),
        (b"\r\n", "chunk size '' is not a hex number"),
        (b";x\r\n", "chunk size ';x' is not a hex number"),
        (b"1" * 16 + b"\r\n", "chunk size with more than 15 hex digits"),
        (b"5;a\nb\r\nhello\r\n", "malformed chunk extension in '5;a\\nb'"),
        (b"3\r\nabcd\r\n", "chunk data longer than its declared size"),
        (b"3\r\nabc\n", "chunk data longer than its declared size"),
        (b"1" * (MAX_LINE_BYTES + 1), "chunk-size line longer than 64 KiB"),
        (b"0\r\nX: " + b"a" * MAX_LINE_BYTES, "trailer section longer than 64 KiB"),
    ],
)
def test_malformed_framing_is_named(sent: bytes, problem: str) -> None:
    payload, body = decode(b"4\r\nkept\r\n" + sent)
    assert payload.startswith(b"kept")  # what came before the problem is handed out
    assert body.error == problem
    assert body.feed(b"1\r\nx\r\n") == b""  # nothing more once broken


# -- h11 and the decoder agree on which bodies are chunked -----------------------------


HEADS = [
    ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 5\r\n\r\n"),
    ("GET", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("GET", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("GET", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
    ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("GET", b"HTTP/1.1 200 OK\r\n\r\n"),
]


class Scripted(ByteStream):
    """A byte stream whose reads return the given pieces, one per receive()."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.pieces:
            raise anyio.EndOfStream
        return self.pieces.pop(0)

    async def send(self, item: bytes) -> None:
        pass

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def start(conn: Conn, method: str = "GET") -> Any:
    url = parse_url("http://upstream.test/")
    request = OutgoingRequest(url, request_head(method, url, (), None), None, 1.0)
    return await exchange(conn, request)


@pytest.mark.parametrize(("method", "head"), HEADS)
async def test_the_decoder_takes_exactly_the_bodies_h11_reads_as_chunked(
    method: str, head: bytes
) -> None:
    # h11 internals, in this test only: if h11 changes how it frames a response body,
    # this fails, and Response's choice of decoder must be revisited.
    conn = Conn(Scripted([head]), "upstream.test", ("http", "upstream.test", 80, None))
    reply = await start(conn, method)
    h11_chunked = type(conn.h11._reader).__name__ == "ChunkedReader"
    assert (reply._chunked is not None) == h11_chunked


async def test_split_at_every_byte_then_the_connection_is_reused() -> None:
    first = chunked_head() + BODY
    second = response(200, (), b"next")
    for at in range(1, len(first)):
        conn = Conn(Scripted([first[:at], first[at:], second]), "u", ("http", "u", 80, None))
        reply = await start(conn)
        assert await reply.read(1000) == PAYLOAD, at
        assert conn.h11.their_state is h11.DONE and not conn.pending, at
        conn.next_cycle()
        reply = await start(conn)
        assert await reply.read(1000) == b"next", at


# -- over the wire -----------------------------------------------------------------------


async def fetch(url: str, method: str = "GET", times: int = 2) -> list[tuple[int, bytes]]:
    client = Client()
    replies = []
    try:
        for _ in range(times):
            async with client.request(method, url) as reply:
                replies.append((reply.status, await reply.read(1 << 20)))
    finally:
        await client.aclose()
    return replies


async def read_twice_on_one_connection(answer: Handler) -> None:
    """Two requests, each answered by ``answer``: both bodies read whole, over one
    connection."""
    with anyio.fail_after(DEADLINE):
        async with serve(answer) as server:
            assert await fetch(server.url) == [(200, PAYLOAD)] * 2
        assert server.accepted == 1


async def test_extensions_and_trailers_then_the_connection_is_reused() -> None:
    async def answer(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head() + BODY)
        return True

    await read_twice_on_one_connection(answer)


async def test_a_body_split_across_writes_is_read_whole() -> None:
    parts = chunked_head() + BODY
    cuts = (len(chunked_head()) - 1, len(chunked_head()) + 2, len(chunked_head()) + 15)

    async def in_pieces(_: Received, stream: ByteStream) -> bool:
        start = 0
        for cut in (*cuts, len(parts)):
            await stream.send(parts[start:cut])
            await anyio.sleep(0.002)  # separate reads, most likely; either way is right
            start = cut
        return True

    await read_twice_on_one_connection(in_pieces)


async def test_bytes_after_a_chunked_body_close_the_connection() -> None:
    async def too_much(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head() + chunk(b"ok") + LAST_CHUNK + b"HTTP/1.1 200 OK\r\n")
        return True

    with anyio.fail_after(DEADLINE):
        async with serve(too_much) as server:
            assert await fetch(server.url) == [(200, b"ok")] * 2
        assert server.accepted == 2


async def test_a_bad_chunk_size_is_a_clear_error() -> None:
    async def broken(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head() + b"1g\r\n")
        await wait_until_closed(stream)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(broken) as server:
            with pytest.raises(HttpClientError) as caught:
                await fetch(server.url, times=1)
    assert str(caught.value) == (
        f"malformed response from 127.0.0.1:{server.port}: chunk size '1g' is not a hex number"
    )


async def test_content_length_body_in_the_heads_read_then_reused() -> None:
    async def answer(_: Received, stream: ByteStream) -> bool:
        await stream.send(response(200, (), b"x" * 5000))
        return True

    with anyio.fail_after(DEADLINE):
        async with serve(answer) as server:
            assert await fetch(server.url) == [(200, b"x" * 5000)] * 2
        assert server.accepted == 1


async def test_close_delimited_body() -> None:
    async def answer(_: Received, stream: ByteStream) -> bool:
        await stream.send(b"HTTP/1.1 200 OK\r\n\r\nuntil")
        await stream.send(b" the end")
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(answer) as server:
            assert await fetch(server.url) == [(200, b"until the end")] * 2
        assert server.accepted == 2


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
async def test_bodiless_answers_announcing_chunked_are_reused(method: str, status: int) -> None:
    async def answer(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head(status))
        return True

    with anyio.fail_after(DEADLINE):
        async with serve(answer) as server:
            assert await fetch(server.url, method) == [(status, b"")] * 2
        assert server.accepted == 1

"""Content-Length bodies read past h11 (framing.direct_body_room, took_directly): the h11
internals they rely on, then over real sockets: big bodies arrive intact, a request
pipelined behind one is still answered, 100-continue and an early end still behave."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator

import h11
import pytest

from astrlite.http.framing import direct_body_room, take_buffered, took_directly
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Route
from tests.support.server import Running, running_server
from tests.support.wire import WireClient

MIB = 1024 * 1024
LIMIT = 64 * MIB


def server_after(head: bytes) -> h11.Connection:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(head)
    assert isinstance(connection.next_event(), h11.Request)
    return connection


def test_h11_keeps_what_direct_reads_rely_on() -> None:
    connection = server_after(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    assert connection.next_event() is h11.NEED_DATA
    assert direct_body_room(connection) == 10
    took_directly(connection, 4)
    assert direct_body_room(connection) == 6
    connection.receive_data(b"56")  # h11 may still be fed the rest itself
    assert bytes(connection.next_event().data) == b"56"  # type: ignore[union-attr]
    took_directly(connection, 4)
    assert direct_body_room(connection) == 0
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    assert connection.their_state is h11.DONE


def test_a_chunked_body_is_left_to_h11() -> None:
    connection = server_after(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert connection.next_event() is h11.NEED_DATA
    assert direct_body_room(connection) == 0
    connection.receive_data(b"3\r\nabc\r\n")
    assert take_buffered(connection) is None
    assert bytes(connection.next_event().data) == b"abc"  # type: ignore[union-attr]


def test_what_h11_holds_of_a_body_is_taken_and_no_more() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
    connection = server_after(head + b"abc")
    assert take_buffered(connection) == b"abc"
    assert take_buffered(connection) is None  # nothing more has arrived
    connection.receive_data(b"deGET / HTTP/1.1\r\n")  # the rest, then a pipelined head
    assert take_buffered(connection) == b"de"
    assert take_buffered(connection) is None  # the body is over
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    connection.send(h11.Response(status_code=204, headers=[]))
    connection.send(h11.EndOfMessage())
    connection.start_next_cycle()
    connection.receive_data(b"Host: x\r\n\r\n")
    assert isinstance(connection.next_event(), h11.Request)


async def digest(request: Request) -> Response:
    hasher = hashlib.sha256()
    size = 0
    async for piece in request.stream(LIMIT, "too large"):
        hasher.update(piece)
        size += len(piece)
    return json_ok({"sha256": hasher.hexdigest(), "size": size})


@pytest.fixture(scope="module")
def srv() -> Iterator[Running]:
    routes = {"/t/digest": {"POST": Route(digest, public=True)}}
    with running_server(routes, body_timeout=2.0) as running:
        yield running


def post(body: bytes, *extra: bytes) -> bytes:
    lines = [b"POST /t/digest HTTP/1.1", b"Host: x", b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def expected(body: bytes) -> dict[str, object]:
    return {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


def test_big_bodies_and_the_requests_pipelined_behind_them(srv: Running) -> None:
    first, second = os.urandom(9 * MIB + 7), os.urandom(3 * MIB)
    with srv.connect() as sock:
        client = WireClient(sock)
        # All three requests at once: the server must not read past a body.
        sock.sendall(post(first) + first + post(second) + second + post(b"") + post(b"tail"))
        sock.sendall(b"tail")
        for body in (first, second, b"", b"tail"):
            client.expect_response_for(b"POST")
            reply = client.read_response()
            assert (reply.status, reply.json()["data"]) == (200, expected(body))
            client.next_cycle()


def test_expect_continue_then_a_big_body(srv: Running) -> None:
    body = os.urandom(5 * MIB)
    with srv.connect() as sock:
        sock.sendall(post(body, b"Expect: 100-continue"))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        client = WireClient(sock)
        client.expect_response_for(b"POST")
        assert client.read_response().json()["data"] == expected(body)


def test_a_body_that_ends_early_is_a_clean_400(srv: Running) -> None:
    body = os.urandom(2 * MIB)
    with srv.connect() as sock:
        sock.sendall(post(body) + body[: MIB + 3])
        sock.shutdown(socket.SHUT_WR)
        client = WireClient(sock)
        client.expect_response_for(b"POST")
        reply = client.read_response()
        assert reply.status == 400
        assert reply.json()["message"] == "Malformed HTTP request"

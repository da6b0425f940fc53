"""Response bodies written past h11 (framing.ServerConnection, chunk, sent_directly): the
bytes are exactly h11's own for every kind of request and response, and h11 still ends
the message and keeps the connection's state."""

from __future__ import annotations

import h11
import pytest

from astrlite.http import heads
from astrlite.http.framing import ServerConnection, chunk, chunked_response, sent_directly

Pairs = list[tuple[bytes, bytes]]
SSE: Pairs = [(b"content-type", b"text/event-stream"), (b"connection", b"keep-alive")]
JSON: Pairs = [(b"content-type", b"application/json")]


def after_request(connection: h11.Connection, head: bytes) -> h11.Connection:
    connection.receive_data(head)
    assert isinstance(connection.next_event(), h11.Request)
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    return connection


def both(head: bytes) -> tuple[h11.Connection, h11.Connection]:
    return (
        after_request(h11.Connection(h11.SERVER), head),
        after_request(ServerConnection(max_incomplete_event_size=16384), head),
    )


def streamed(connection: h11.Connection, response: h11.Response, pieces: list[bytes]) -> bytes:
    """The head, the pieces and the end as h11 writes them (plain h11), or as the server
    does (ServerConnection: the pieces framed past h11 when the response is chunked)."""
    out = connection.send(response) or b""
    for piece in pieces:
        if type(connection) is ServerConnection and chunked_response(connection):
            out += chunk(piece)
        else:
            out += connection.send(h11.Data(data=piece)) or b""
    return out + (connection.send(h11.EndOfMessage()) or b"")


REQUESTS = {
    "1.1 keep-alive": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "1.1 close": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "1.0": b"GET / HTTP/1.0\r\n\r\n",
    "1.0 keep-alive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "HEAD": b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("request_head", REQUESTS.values(), ids=REQUESTS.keys())
@pytest.mark.parametrize("status", [200, 404, 204, 304])
@pytest.mark.parametrize("close", [False, True])
def test_a_stream_is_framed_as_h11_frames_it(request_head: bytes, status: int, close: bool) -> None:
    plain, ours = both(request_head)
    pieces = (
        []
        if status in (204, 304) or request_head.startswith(b"HEAD")
        else [b"data: 1\n\n", b"x" * 300]
    )
    response = heads.response(status, [(b"server", b"t")], SSE, None, close=close)
    assert streamed(ours, response, pieces) == streamed(plain, response, pieces)
    assert (ours.our_state, ours.their_state) == (plain.our_state, plain.their_state)


@pytest.mark.parametrize("request_head", REQUESTS.values(), ids=REQUESTS.keys())
def test_a_content_length_body_written_past_h11(request_head: bytes) -> None:
    plain, ours = both(request_head)
    body = b'{"status": "ok"}'
    response = heads.response(200, [], JSON, len(body), close=False)
    expected = plain.send(response) or b""
    head = ours.send(response) or b""
    assert head == expected
    if request_head.startswith(b"HEAD"):
        return
    expected += plain.send(h11.Data(data=body)) or b""
    sent_directly(ours, len(body))
    assert head + body == expected
    assert ours.send(h11.EndOfMessage()) == plain.send(h11.EndOfMessage()) == b""
    assert ours.our_state is plain.our_state


def test_h11_still_checks_a_length_written_past_it() -> None:
    (_, ours) = both(REQUESTS["1.1 keep-alive"])
    ours.send(heads.response(200, [], JSON, 10, close=False))
    sent_directly(ours, 4)
    with pytest.raises(h11.LocalProtocolError):
        ours.send(h11.EndOfMessage())  # six bytes short


def test_the_next_request_on_the_connection_after_a_chunked_stream() -> None:
    (_, ours) = both(REQUESTS["1.1 keep-alive"])
    ours.send(heads.response(200, [], SSE, None, close=False))
    assert chunked_response(ours)
    ours.send(h11.EndOfMessage())
    ours.start_next_cycle()
    after_request(ours, REQUESTS["1.1 keep-alive"])
    assert ours.their_state is h11.DONE


def test_a_chunk_is_its_size_in_hex_then_the_bytes() -> None:
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"

"""A turn's first events leave before the rest of a burst is processed: with a provider
that produces a whole reply at once (echo), the first delta is its own chunk on the wire
(the HTTP chunked framing shows what each socket write carried)."""

from __future__ import annotations

import json
import socket

from tests.support.server import TEST_KEY, running_server
from tests.support.wire import read_until_close

WORDS = 20  # fewer than the stream's buffer holds: nothing waits for the client


def chunks(body: bytes) -> list[bytes]:
    """The chunks of a chunked body, in order."""
    out = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if not size:
            return out
        out.append(body[:size])
        body = body[size + 2 :]


def test_first_delta_is_written_before_the_rest() -> None:
    text = " ".join(f"w{n}" for n in range(WORDS))
    payload = json.dumps({"username": "u", "message": text}).encode()
    config = {"provider": "echo", "providers": [{"id": "echo", "type": "echo"}]}
    head = (
        b"POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-API-Key: "
        + TEST_KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
    )
    with running_server(config=config) as srv:
        sock = socket.create_connection((srv.host, srv.port))
        try:
            sock.sendall(head + payload)
            raw = read_until_close(sock)
        finally:
            sock.close()
    body = raw.partition(b"\r\n\r\n")[2]
    plains = [chunk.count(b'"type": "plain"') for chunk in chunks(body)]
    first = next(count for count in plains if count)
    assert first == 1
    assert sum(plains) == WORDS + 1  # "Echo:" and each word

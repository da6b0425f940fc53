"""A reused connection to an upstream that writes without TCP_NODELAY is as prompt as a
fresh one: the client acknowledges at once while a response streams (the _TCP_QUICKACK
note in astrlite/outbound/connection.py). Checked by the socket option, not a timing."""

from __future__ import annotations

import socket
import sys

import anyio
import pytest

from astrlite.outbound.client import Client
from astrlite.outbound.connection import Response
from tests.fakes.nagle_upstream import nagle_upstream

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="TCP_QUICKACK is Linux's"),
]

CHUNKS = [b'data: {"n": %d}\n\n' % n for n in range(20)]


def acks_promptly(response: Response) -> bool:
    # getsockopt(TCP_QUICKACK) is 1 while the socket is out of delayed-ACK "pingpong"
    # mode, which a request sent right after the previous response puts it in.
    raw = response._conn.socket
    assert raw is not None
    return raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1


async def test_reused_connection_acknowledges_promptly() -> None:
    client = Client(trust_env=False)
    with nagle_upstream(CHUNKS) as upstream:
        with anyio.fail_after(5):
            for _turn in range(3):
                async with client.request("POST", upstream.url, body=b"{}") as response:
                    assert acks_promptly(response)
                    body = b"".join([chunk async for chunk in response.aiter_bytes()])
                    assert acks_promptly(response)  # still: reading does not undo it
                assert body == b"".join(CHUNKS)
        await client.aclose()
    assert upstream.connections == 1

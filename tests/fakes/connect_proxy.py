"""A CONNECT proxy on 127.0.0.1 (RFC 9110 §9.3.6) that records the tunnels asked for.

Every target host name is reached at 127.0.0.1, so tests can use names (and check SNI)
without DNS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio import CancelScope
from anyio.abc import ByteStream

from tests.fakes.http_server import FakeServer, Received, RequestReader, response, serve_raw


@dataclass
class FakeProxy:
    server: FakeServer
    refuse_with: int | None = None
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def targets(self) -> list[str]:
        return [request.target for request in self.requests]


async def _pipe(source: ByteStream, sink: ByteStream, scope: CancelScope) -> None:
    try:
        async for data in source:
            await sink.send(data)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    scope.cancel()  # one side is done: end the tunnel


@asynccontextmanager
async def connect_proxy(refuse_with: int | None = None) -> AsyncIterator[FakeProxy]:
    proxy: FakeProxy | None = None

    async def on_connection(client: ByteStream, _: FakeServer) -> None:
        assert proxy is not None
        request = await RequestReader(client).next()
        if request is None or request.method != "CONNECT":
            return
        proxy.requests.append(request)
        if proxy.refuse_with is not None:
            await client.send(response(proxy.refuse_with, body=b"not allowed"))
            return
        port = int(request.target.rpartition(":")[2])
        async with await anyio.connect_tcp("127.0.0.1", port) as upstream:
            await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
            async with anyio.create_task_group() as tg:
                tg.start_soon(_pipe, client, upstream, tg.cancel_scope)
                tg.start_soon(_pipe, upstream, client, tg.cancel_scope)

    async with serve_raw(on_connection) as server:
        proxy = FakeProxy(server, refuse_with)
        yield proxy

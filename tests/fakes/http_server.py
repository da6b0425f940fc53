"""HTTP/1.1 servers on 127.0.0.1: h11 parses each request, the handler writes raw bytes.

Raw responses let tests send exactly what a broken server would (oversized heads,
garbage, bodies cut short), which a well-behaved server library cannot.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskGroup
from anyio.streams.tls import TLSStream

# Whatever a client can do to a fake's socket; the fake then just drops the connection.
_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


class RequestReader:
    """Reads the requests of one connection, keeping bytes that belong to the next one."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._pending = b""

    async def next(self) -> Received | None:
        """The next request, or None when the client closed the connection or misbehaved."""
        conn = h11.Connection(h11.SERVER)
        if self._pending:
            conn.receive_data(self._pending)
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return None
            if event is h11.NEED_DATA:
                try:
                    conn.receive_data(await self._stream.receive())
                except anyio.EndOfStream:
                    conn.receive_data(b"")
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                self._pending = conn.trailing_data[0]
                headers = [(k.decode(), v.decode()) for k, v in head.headers]
                return Received(head.method.decode(), head.target.decode(), headers, bytes(body))
            else:
                return None


def response(
    status: int = 200, headers: tuple[tuple[str, str], ...] = (), body: bytes = b""
) -> bytes:
    """A complete response with Content-Length."""
    lines = [f"HTTP/1.1 {status} Whatever", *(f"{k}: {v}" for k, v in headers)]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked_head(status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever", *(f"{k}: {v}" for k, v in headers)]
    lines.append("transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


async def wait_until_closed(stream: ByteStream) -> None:
    """Read and drop whatever comes until the client closes the connection."""
    try:
        while True:
            await stream.receive()
    except _GONE:
        return


# Gets each request and the connection; returns whether to keep the connection open.
Handler = Callable[[Received, ByteStream], Awaitable[bool]]


@dataclass
class FakeServer:
    port: int
    accepted: int = 0
    closed: int = 0
    requests: list[Received] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_closed(self, count: int) -> None:
        """Until `count` connections have been closed (by either side)."""
        while self.closed < count:
            await self._changed.wait()

    def _note_closed(self) -> None:
        self.closed += 1
        self._changed.set()
        self._changed = anyio.Event()


# Runs for each accepted connection (after the TLS handshake, if any).
OnConnection = Callable[[ByteStream, FakeServer], Awaitable[None]]


async def _accept_loop(
    listener: SocketListener,
    server: FakeServer,
    on_connection: OnConnection,
    tls: ssl.SSLContext | None,
    tg: TaskGroup,
) -> None:
    async def run(stream: ByteStream) -> None:
        try:
            if tls is not None:
                stream = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=tls, standard_compatible=False
                )
            await on_connection(stream, server)
        except (ssl.SSLError, *_GONE):
            pass
        finally:
            await anyio.aclose_forcefully(stream)
            server._note_closed()

    while True:
        stream = await listener.accept()
        server.accepted += 1
        tg.start_soon(run, stream)


@asynccontextmanager
async def serve_raw(
    on_connection: OnConnection, tls: ssl.SSLContext | None = None
) -> AsyncIterator[FakeServer]:
    """Run on_connection for every accepted connection (after the TLS handshake if tls)."""
    listeners = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listeners, anyio.create_task_group() as tg:
        listener = listeners.listeners[0]
        assert isinstance(listener, SocketListener)
        server = FakeServer(listener.extra(SocketAttribute.local_port))
        tg.start_soon(_accept_loop, listener, server, on_connection, tls, tg)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[FakeServer]:
    """An HTTP/1.1 server: handler answers each request (recorded in server.requests)."""

    async def on_connection(stream: ByteStream, server: FakeServer) -> None:
        reader = RequestReader(stream)
        while (request := await reader.next()) is not None:
            server.requests.append(request)
            if not await handler(request, stream):
                return

    async with serve_raw(on_connection, tls) as server:
        yield server

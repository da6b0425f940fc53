"""A connection served without a socket: an in-memory transport, and a client that speaks
through it with a real ``h11.Connection(CLIENT)``.

The transport satisfies ``astrlite.http.transport.Transport`` as the raw socket does:
``receive`` waits for the client's bytes and returns b"" once the client has sent EOF;
``try_send`` takes only what fits in ``capacity`` (the "kernel buffer"), so a client that
does not read makes the server wait, as a full socket would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h11

from astrlite.http.app import App
from astrlite.http.auth import KeyVerifier
from astrlite.http.connection import Connection, Lifecycle
from astrlite.http.router import Router, RouteTable
from astrlite.options import Options
from astrlite.principal import Principal

DEFAULT_CAPACITY = 1 << 20


class _Signal:
    """Wakes every waiter each time something changes."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class MemoryTransport:
    """Both ends of one in-memory connection (the server's calls, then the client's)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._to_server = bytearray()
        self._to_client = bytearray()
        self.client_eof = False
        self.client_reset = False
        self.server_eof = False
        self.closed = False
        self.received = 0  # bytes the server has taken from the client
        self.sent_from_files = 0  # bytes the server sent with send_file
        self._changed = _Signal()
        # The server's on_readable watch: its callback and the loop that runs it.
        self._watch: tuple[asyncio.AbstractEventLoop, Callable[[], None]] | None = None

    # -- the server's side (the Transport protocol) --------------------------------------

    async def receive(self, max_bytes: int) -> bytes:
        while True:
            if self.closed:
                raise anyio.ClosedResourceError
            if self.client_reset:
                raise ConnectionResetError("the client reset the connection")
            if self._to_server or self.client_eof:
                data = bytes(self._to_server[:max_bytes])
                del self._to_server[:max_bytes]
                self.received += len(data)
                self._changed.set()
                return data
            await self._changed.wait()

    def try_receive(self, max_bytes: int) -> bytes | None:
        if self.closed:
            raise anyio.ClosedResourceError
        if self.client_reset:
            raise ConnectionResetError("the client reset the connection")
        if not self._to_server and not self.client_eof:
            return None
        data = bytes(self._to_server[:max_bytes])
        del self._to_server[:max_bytes]
        self.received += len(data)
        self._changed.set()
        return data

    def on_readable(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._watch = (asyncio.get_running_loop(), callback)
        self._notify_watch()

        def cancel() -> None:
            self._watch = None

        return cancel

    def _notify_watch(self) -> None:
        """Run the watch's callback soon, on its loop, if there is something to receive."""
        if self._watch is None or not (self._to_server or self.client_eof or self.client_reset):
            return
        loop, callback = self._watch
        self._watch = None
        loop.call_soon_threadsafe(callback)

    def try_send(self, data: memoryview) -> int:
        if self.closed:
            raise anyio.ClosedResourceError
        if self.client_reset:
            raise BrokenPipeError("the client reset the connection")
        room = max(0, self.capacity - len(self._to_client))
        taken = min(room, len(data))
        self._to_client += data[:taken]
        if taken:
            self._changed.set()
        return taken

    async def send_rest(self, data: memoryview) -> None:
        while data:
            data = data[self.try_send(data) :]
            if data:
                await self._changed.wait()

    async def send_file(self, fd: int, offset: int, count: int) -> int:
        while True:
            room = self.capacity - len(self._to_client)
            if room > 0:
                sent = self.try_send(memoryview(os.pread(fd, min(room, count), offset)))
                self.sent_from_files += sent
                return sent
            await self._changed.wait()

    def send_eof(self) -> None:
        self.server_eof = True
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    # -- the client's side ---------------------------------------------------------------

    def client_send(self, data: bytes) -> None:
        assert not self.client_eof, "the client already sent EOF"
        self._to_server += data
        self._changed.set()
        self._notify_watch()

    def client_send_eof(self) -> None:
        self.client_eof = True
        self._changed.set()
        self._notify_watch()

    def client_send_reset(self) -> None:
        self.client_reset = True
        self._changed.set()
        self._notify_watch()

    async def client_receive(self) -> bytes:
        """What the server sent; b"" once it sent EOF or closed (and nothing is left)."""
        while True:
            if self._to_client:
                data = bytes(self._to_client)
                self._to_client.clear()
                self._changed.set()
                return data
            if self.server_eof or self.closed:
                return b""
            await self._changed.wait()

    async def wait_closed(self) -> None:
        while not self.closed:
            await self._changed.wait()

    async def wait_received(self, count: int) -> None:
        """Until the server has taken at least `count` bytes from the client."""
        while self.received < count and not self.closed:
            await self._changed.wait()


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    informational: list[int] = field(default_factory=list)
    http_version: bytes = b"1.1"

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class MemoryClient:
    """An HTTP/1.1 client (h11) speaking to one server connection through the transport."""

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport
        self.h11 = h11.Connection(h11.CLIENT)

    def send(self, *events: h11.Event) -> None:
        for event in events:
            data = self.h11.send(event)
            if data:
                self.transport.client_send(data)

    def request(
        self,
        method: str,
        target: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> None:
        """Send a whole request; a body gets a Content-Length unless headers frame it."""
        all_headers = [("host", "memory"), *headers]
        names = {name.lower() for name, _ in all_headers}
        if body is not None and not names & {"content-length", "transfer-encoding"}:
            all_headers.append(("content-length", str(len(body))))
        self.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            self.send(h11.Data(data=body))
        self.send(h11.EndOfMessage())

    def send_raw(self, data: bytes, *, method: bytes = b"GET") -> None:
        """Bytes no well-behaved client would send; `method` tells the parser how the
        answer is framed (a HEAD answer has no body)."""
        self.expect(method)
        self.transport.client_send(data)

    def expect(self, method: bytes = b"GET") -> None:
        """Make the h11 client believe it sent a request, without sending anything."""
        self.h11.send(h11.Request(method=method, target="/", headers=[("host", "memory")]))
        self.h11.send(h11.EndOfMessage())

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self.transport.client_receive())

    async def response(self) -> Reply:
        """The next whole response (1xx responses are listed in `informational`)."""
        informational: list[int] = []
        while True:
            event = await self.next_event()
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                break
            else:
                raise AssertionError(f"expected a response, got {event!r}")
        head = event
        body = bytearray()
        while True:
            event = await self.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {event!r} in a response body")
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return Reply(
            head.status_code, list(head.headers), bytes(body), informational, head.http_version
        )

    async def head(self) -> h11.Response:
        """Only the next response's head (for a body that never ends)."""
        while True:
            event = await self.next_event()
            if isinstance(event, h11.Response):
                return event

    async def closed_by_server(self) -> bytes:
        """Read until the server ends the connection, then close our side (as a client
        does) and wait until the server has let go. Returns what arrived meanwhile."""
        rest = bytearray()
        while data := await self.transport.client_receive():
            rest += data
        self.transport.client_send_eof()
        await self.transport.wait_closed()
        return bytes(rest)


class Harness:
    """An App served over memory transports; each `connect()` is one client connection."""

    def __init__(self, app: App, group: anyio.abc.TaskGroup) -> None:
        self.app = app
        self.lifecycle = Lifecycle()
        self._group = group
        self.connections: list[Connection] = []

    def connect(self, capacity: int = DEFAULT_CAPACITY) -> MemoryClient:
        transport = MemoryTransport(capacity)
        connection = Connection(transport, self.app, self.lifecycle)
        self.connections.append(connection)
        self._group.start_soon(connection.run)
        return MemoryClient(transport)


def no_keys(key: str) -> Principal | None:
    return None


@asynccontextmanager
async def serve_in_memory(
    routes: RouteTable,
    *,
    verify_key: KeyVerifier = no_keys,
    touch: Callable[[Principal], Any] | None = None,
    **option_changes: Any,
) -> AsyncIterator[Harness]:
    """An App of these routes alone, with these options."""
    options = dataclasses.replace(Options(), **option_changes)
    async with serve_app_in_memory(App(options, Router(routes), verify_key, touch)) as harness:
        yield harness


@asynccontextmanager
async def serve_app_in_memory(app: App) -> AsyncIterator[Harness]:
    """Any App, for example a whole server's from `astrlite.runtime.start`."""
    async with anyio.create_task_group() as group:
        app.background.attach(group)
        try:
            yield Harness(app, group)
        finally:
            app.background.attach(None)
            group.cancel_scope.cancel()

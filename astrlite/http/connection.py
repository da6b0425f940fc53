"""One client connection: h11 over an anyio stream, with a deadline on every wait.

This module alone owns the socket. It reads a request head, hands the app a Request
whose body is pulled only on demand, writes the Response (coalescing head and small
body into one write) and decides whether the connection lives on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from types import AsyncGeneratorType
from typing import TYPE_CHECKING, cast

import anyio
import anyio.lowlevel
import h11

from astrlite import __version__
from astrlite.errors import (
    HEADERS_TOO_LARGE,
    MALFORMED_REQUEST,
    REQUEST_TIMED_OUT,
    TARGET_TOO_LONG,
    ApiError,
    PeerGone,
)
from astrlite.http import access, heads
from astrlite.http.app import App
from astrlite.http.dates import http_date
from astrlite.http.framing import (
    ChunkSizes,
    ServerConnection,
    check_head,
    chunk,
    chunked_response,
    direct_body_room,
    sent_directly,
    take_buffered,
    took_directly,
)
from astrlite.http.rawsocket import GONE
from astrlite.http.request import DeclaredTooLarge, Request
from astrlite.http.response import FileBody, Response
from astrlite.http.target import parse_target, redact
from astrlite.http.transport import Transport
from astrlite.options import BODY_TIMEOUT_UNIT_BYTES, DEFAULT_SSE_HEARTBEAT, Options
from astrlite.sse import LastChunk

if TYPE_CHECKING:
    from astrlite.http.websocket_channel import WebSocketChannel, WebSocketSession

log = logging.getLogger("astrlite")

# Large enough that a fast upload costs few wake-ups; memory per connection is only
# what one read returns, since we read when the handler asks.
RECEIVE_SIZE = 256 * 1024
# A Content-Length body read past h11 (framing.direct_body_room): bigger reads, fewer
# wake-ups and fewer pieces for an upload to gather into its batches.
BODY_RECEIVE_SIZE = 1024 * 1024
# A small unread body (say a JSON body a 404 never looked at) is read and dropped so the
# connection can be kept alive; a larger one is cheaper to refuse by closing.
DRAIN_LIMIT = 65536
# After an error with the body unread, keep reading (and dropping) briefly so the client
# sees our answer instead of a reset.
LINGER_SECONDS = 1.0
SERVER_HEADER = f"astrlite/{__version__}".encode()
# The event loop's clock (asyncio's is time.monotonic), read on every request without
# anyio's look-up of the running backend.
_clock = time.monotonic


@dataclass
class Lifecycle:
    """What the accept loop and its connections share."""

    stopping: bool = False
    active: int = 0
    busy: int = 0  # connections answering a request (the rest are idle)
    # What idle connections wait on (their next request's bytes): woken to close.
    idle_waiters: set[asyncio.Future[bytes | None]] = field(default_factory=set)
    # Open WebSockets, told of the shutdown so they can end their turn and close (W5).
    websockets: set[WebSocketChannel] = field(default_factory=set)
    all_done: anyio.Event | None = None  # made by the server inside its event loop

    def stop(self) -> None:
        self.stopping = True
        for waiter in self.idle_waiters:
            _wake(waiter)
        for channel in self.websockets:
            channel.request_stop()
        self.connection_ended()

    def connection_ended(self) -> None:
        if self.stopping and self.active == 0 and self.all_done is not None:
            self.all_done.set()


class _DateHeader:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = http_date(now).encode()
        return self._value


date_header = _DateHeader()


class Connection:
    # Slots: one of these lives as long as each held stream.
    __slots__ = (
        "_body_received",
        "_body_started",
        "_chunk_sizes",
        "_content_length",
        "_headers",
        "app",
        "client",
        "h11",
        "lifecycle",
        "options",
        "scope",
        "stream",
    )

    def __init__(self, stream: Transport, app: App, lifecycle: Lifecycle, peer: str = "-") -> None:
        self.stream = stream
        self.app = app
        self.options = app.options
        self.lifecycle = lifecycle
        self.h11 = ServerConnection(max_incomplete_event_size=app.options.max_header_bytes)
        self._body_started = 0.0
        self._body_received = 0
        self._content_length: int | None = None
        self._chunk_sizes: ChunkSizes | None = None  # for a chunked body
        self._headers: list[tuple[bytes, bytes]] = []  # the current request's
        self.client = peer  # for the access log
        self.scope: anyio.CancelScope | None = None  # while it runs

    async def run(self) -> None:
        try:
            # One scope for the connection's life, not one per streamed response: a
            # client hanging up mid-stream cancels it (_PeerWatch).
            with anyio.CancelScope() as self.scope:
                await self._serve()
        except PeerGone:
            pass
        except Exception:
            log.exception("connection crashed")
        finally:
            self.stream.close()

    async def _serve(self) -> None:
        first = True
        while True:
            event = await self._read_head(first)
            if event is None:
                return
            first = False
            if not await self._respond(event):
                return
            self.h11.start_next_cycle()
            if self.h11.trailing_data[0]:
                # A socket read or write that succeeds at once does not yield: without
                # this a client whose next request is always waiting would starve the
                # others (_receive_idle does the same for bytes that are in the socket).
                await anyio.lowlevel.checkpoint()

    # -- reading -------------------------------------------------------------------

    async def _receive(self, size: int = RECEIVE_SIZE) -> bytes:
        try:
            return await self.stream.receive(size)
        except GONE:
            raise PeerGone from None

    async def _read_head(self, first: bool) -> h11.Request | None:
        head_deadline: float | None = None
        while True:
            received, closed = self.h11.trailing_data
            # With nothing held and the stream open h11 could only say NEED_DATA (the
            # next request has not arrived yet): it is asked once there are bytes.
            if received or closed:
                try:
                    event = self.h11.next_event()
                except h11.RemoteProtocolError as error:
                    await self._answer_and_close(self._head_error(error))
                    return None
                if isinstance(event, h11.Request):
                    self._headers = _pairs(event)
                    refusal = self._check_head(event)
                    if refusal is not None:
                        await self._answer_and_close(refusal)
                        return None
                    return event
                if event is not h11.NEED_DATA:
                    return None  # ConnectionClosed
            if received:
                if head_deadline is None:
                    head_deadline = _clock() + self.options.header_timeout
                data = await self._receive_before(head_deadline)
                if data is None:
                    await self._answer_and_close(ApiError(408, REQUEST_TIMED_OUT))
                    return None
            else:
                data = await self._receive_idle(first)
                if data is None:
                    return None
                # RFC 9112 §2.2: empty lines before a request line are ignored.
                if data:
                    data = data.lstrip(b"\r\n")
                    if not data:
                        continue
                head_deadline = _clock() + self.options.header_timeout
            self.h11.receive_data(data)

    def _head_error(self, error: h11.RemoteProtocolError) -> ApiError:
        if error.error_status_hint != 431:
            # h11 hints 501 for a transfer coding other than a final chunked; RFC 9112
            # §6.3 wants 400 when chunked is not the final coding, and that is the one
            # answer that fits both cases.
            return ApiError(400, MALFORMED_REQUEST)
        if b"\n" not in self.h11.trailing_data[0]:
            return ApiError(414, TARGET_TOO_LONG)  # still in the request line (RFC 9112 §3)
        return ApiError(431, HEADERS_TOO_LARGE)

    def _check_head(self, event: h11.Request) -> ApiError | None:
        # h11 enforces its size limit only on a head still incomplete; one that arrived
        # whole in a single read is measured here.
        limit = self.options.max_header_bytes
        if len(event.method) + len(event.target) + REQUEST_LINE_EXTRA > limit:
            return ApiError(414, TARGET_TOO_LONG)
        if _head_size(event, self._headers) > limit:
            return ApiError(431, HEADERS_TOO_LARGE)
        return check_head(event, self._headers)

    async def _receive_idle(self, first: bool) -> bytes | None:
        """Wait for a request's first bytes; None when idle too long or shutting down."""
        if self.lifecycle.stopping:
            return None
        # Often the bytes are already here (a pipelining or busy client).
        try:
            data = self.stream.try_receive(RECEIVE_SIZE)
        except GONE:
            raise PeerGone from None
        if data is not None:
            await anyio.lowlevel.checkpoint()  # let the others run first (see _serve)
            return data
        # A future given the bytes by the socket's reader callback, or woken by a loop
        # timer or the shutdown: every request of a keep-alive connection waits here,
        # and an anyio cancel scope around a read would cost three times as much.
        timeout = self.options.header_timeout if first else self.options.keepalive_timeout
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes | None] = loop.create_future()
        forget = self.stream.on_readable(partial(self._arrived, waiter))
        timer = loop.call_later(timeout, _wake, waiter)
        idle = self.lifecycle.idle_waiters
        idle.add(waiter)
        try:
            data = await waiter
        finally:
            idle.discard(waiter)
            timer.cancel()
            forget()
        return None if self.lifecycle.stopping else data  # None: the time is up

    def _arrived(self, waiter: asyncio.Future[bytes | None]) -> None:
        """The socket is readable while an idle connection waits: read, in the reader
        callback itself (a read left for the task would find the socket readable once
        more in between, and that stops the watch, rawsocket.py)."""
        if waiter.done():
            return
        try:
            data = self.stream.try_receive(RECEIVE_SIZE)
        except GONE:
            waiter.set_exception(PeerGone())
            return
        if data is None:  # nothing after all
            self.stream.on_readable(partial(self._arrived, waiter))
        else:
            waiter.set_result(data)

    async def _receive_before(self, deadline: float, size: int = RECEIVE_SIZE) -> bytes | None:
        with anyio.move_on_after(max(0.0, deadline - _clock())):
            return await self._receive(size)
        return None

    async def receive_chunk(self, limit: int) -> bytes | None:
        """The request body's next piece (the Request's BodySource)."""
        if self.h11.they_are_waiting_for_100_continue:
            await self._write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        if not self._body_started:
            self._body_started = _clock()
        while True:
            self._check_chunk_sizes(limit)
            piece = take_buffered(self.h11)
            if piece is not None:
                self._body_received += len(piece)
                return piece
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                raise ApiError(400, MALFORMED_REQUEST, close=True) from None
            if isinstance(event, h11.Data):
                self._body_received += len(event.data)
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage):
                return None
            if event is not h11.NEED_DATA:
                raise ApiError(400, MALFORMED_REQUEST, close=True)
            room = direct_body_room(self.h11)
            if room:
                piece = await self._receive_body(min(room, BODY_RECEIVE_SIZE))
                if piece:
                    took_directly(self.h11, len(piece))
                    self._body_received += len(piece)
                    return piece
                self.h11.receive_data(b"")  # the end of the stream: h11 says 400
                continue
            data = await self._receive_before(self._body_deadline())
            if data is None:
                raise ApiError(408, REQUEST_TIMED_OUT, close=True)
            if self._chunk_sizes is not None:
                self._chunk_sizes.feed(data)
            self.h11.receive_data(data)

    async def _receive_body(self, size: int) -> bytes:
        """Body bytes read past h11; without a cancel scope when they are already here."""
        try:
            data = self.stream.try_receive(size)
        except GONE:
            raise PeerGone from None
        if data is None:
            data = await self._receive_before(self._body_deadline(), size)
            if data is None:
                raise ApiError(408, REQUEST_TIMED_OUT, close=True)
        return data

    def _check_chunk_sizes(self, limit: int) -> None:
        """Refuse a chunked body by its declared sizes, before waiting for their bytes
        (docs/compatibility.md H4)."""
        sizes = self._chunk_sizes
        if sizes is None:
            return
        if sizes.overflow:
            raise ApiError(400, MALFORMED_REQUEST, close=True)
        if sizes.declared > limit:
            raise DeclaredTooLarge

    def _body_deadline(self) -> float:
        size = self._content_length
        if size is None:  # chunked: the allowance grows with what has arrived
            size = self._body_received + 1
        units = max(1.0, size / BODY_TIMEOUT_UNIT_BYTES)
        return self._body_started + self.options.body_timeout * units

    async def _finish_body(self) -> bool:
        """Read what is left of a small request body; False when closing is the better way."""
        if self.h11.their_state is not h11.SEND_BODY:
            return self.h11.their_state is h11.DONE
        if self.h11.they_are_waiting_for_100_continue:
            return False
        if self._content_length == 0:  # no body: its end is already in h11
            return type(self.h11.next_event()) is h11.EndOfMessage
        if self._content_length is None or self._content_length - self._body_received > DRAIN_LIMIT:
            return False
        try:
            while await self.receive_chunk(DRAIN_LIMIT) is not None:
                pass
        except ApiError:
            return False
        return True

    # -- writing -------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            view = view[self.stream.try_send(view) :]
            if view:  # the kernel's buffer is full: wait, within the write deadline
                with anyio.fail_after(self.options.write_timeout):
                    await self.stream.send_rest(view)
        except GONE:
            raise PeerGone from None

    async def _answer_and_close(self, error: ApiError) -> None:
        """Answer a protocol-level error if h11 still lets us, then close."""
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            response = self.app.error_response(error)
            response.close = True
            started = time.perf_counter()
            sent = await self._send(b"GET", response)
            self._log("-", b"-", None, None, response.status, sent, started)
            await self._linger()

    async def _linger(self) -> None:
        with anyio.move_on_after(LINGER_SECONDS):
            try:
                self.stream.send_eof()
                while await self._receive():
                    pass
            except (PeerGone, *GONE):
                pass

    def _head(self, response: Response, *, close: bool) -> h11.Response:
        # RFC 9110 §8.6: never a Content-Length on a 204; on a 304 only the size a 200
        # would have had, which a bytes body (always empty there) does not tell.
        length: int | None = None
        if isinstance(response.body, bytes):
            if response.status not in (204, 304):
                length = len(response.body)
        elif response.status != 204:
            length = response.content_length
        fixed = [(b"server", SERVER_HEADER), (b"date", date_header())]
        return heads.response(response.status, fixed, response.headers, length, close=close)

    async def _send(self, method: bytes, response: Response) -> int:
        """Write the response; returns the body bytes sent."""
        head = self.h11.send(self._head(response, close=response.close))
        body = response.body
        if method == b"HEAD" or response.status in (204, 304):
            if not isinstance(body, bytes):
                await _close_body(body)
            await self._write(head + self.h11.send(h11.EndOfMessage()))
            return 0
        if isinstance(body, bytes):
            sent_directly(self.h11, len(body))
            await self._write(head + body + self.h11.send(h11.EndOfMessage()))
            return len(body)
        return await self._stream_body(head, body)

    async def _stream_body(self, head: bytes, body: AsyncIterable[bytes] | FileBody) -> int:
        """The head leaves with the body's first piece (a body that may take its time
        yields ``b""`` first), the last piece (a ``LastChunk``) with the end. A file
        goes by sendfile after the head."""
        sent = 0
        finished = False  # the body is a generator that ran to its end
        pending = head
        chunked = chunked_response(self.h11)
        watch = _PeerWatch(self) if self.h11.their_state is h11.DONE else None
        metrics = self.app.metrics
        if metrics is not None:
            metrics.open_streams += 1
        try:
            if watch is not None:
                watch.start()
            # The abstract class's isinstance is cached per type; a Protocol's would
            # cost tens of microseconds on every streamed response.
            if isinstance(body, AsyncIterable):
                async for piece in body:
                    if not piece:
                        data = b""
                    elif chunked:  # past h11 (framing.py)
                        data = chunk(piece)
                    else:
                        data = self.h11.send(h11.Data(data=piece))
                    sent += len(piece)
                    if type(piece) is LastChunk:  # sent with the end
                        pending += data
                        finished = await _returns(body)
                        break
                    if data or pending:
                        await self._write(pending + data)
                        pending = b""
                else:
                    # A generator that has returned is closed; other iterables may hold
                    # something until their aclose.
                    finished = type(body) is AsyncGeneratorType
            else:
                await self._write(pending)
                pending = b""
                sent = await self._send_file(*body.file_slice())
            await self._write(pending + self.h11.send(h11.EndOfMessage()))
        finally:
            if metrics is not None:
                metrics.open_streams -= 1
            if watch is not None:
                watch.stop()
            if not finished:
                await _close_body(body)
        return sent

    async def _send_file(self, fd: int, offset: int, length: int) -> int:
        """Send length bytes of a file from offset with sendfile; h11 frames them (its
        documented sendfile support: a Data whose data only has a length)."""
        if not length:
            return 0
        data = h11.Data(data=cast(bytes, _Length(length)))
        pieces = cast("list[bytes | _Length]", self.h11.send_with_data_passthrough(data))
        for piece in pieces:
            if isinstance(piece, bytes):
                await self._write(piece)  # a chunk's framing, for a chunked response
                continue
            end = offset + length
            while offset < end:
                try:
                    with anyio.fail_after(self.options.write_timeout):
                        sent = await self.stream.send_file(fd, offset, end - offset)
                except GONE:
                    raise PeerGone from None
                if not sent:
                    # The head promised more: closing is how the client learns.
                    log.warning("file shrank while sent (%d bytes missing)", end - offset)
                    raise PeerGone
                offset += sent
                # A client that always has room would otherwise starve the others.
                await anyio.lowlevel.checkpoint()
        return length

    # -- one exchange ----------------------------------------------------------------

    async def _respond(self, event: h11.Request) -> bool:
        self.lifecycle.busy += 1
        try:
            return await self._exchange(event)
        finally:
            self.lifecycle.busy -= 1

    async def _exchange(self, event: h11.Request) -> bool:
        started = time.perf_counter()
        method = event.method.decode("ascii", "replace")
        self._body_started = 0.0
        self._body_received = 0
        headers = self._headers
        self._content_length = _content_length(headers)
        self._chunk_sizes = None
        if self._content_length is None:
            self._chunk_sizes = ChunkSizes()
            self._chunk_sizes.feed(self.h11.trailing_data[0])  # what came with the head
        request = None
        try:
            target = parse_target(event.target)
        except ApiError as error:
            response = self.app.error_response(error)
        else:
            request = Request(
                method,
                target.path,
                target.query,
                headers,
                self,
                self._content_length,
            )
            response = await self.app.handle(request)
        if response.websocket is not None:
            await self._switch(response.headers, response.websocket)
            self._log(method, event.target, request, headers, 101, 0, started)
            return False
        keep_alive = (
            not response.close and not self.lifecycle.stopping and await self._finish_body()
        )
        response.close = not keep_alive
        status = response.status
        sent = 0
        try:
            sent = await self._send(event.method, response)
        finally:
            self._log(method, event.target, request, headers, status, sent, started)
        if not keep_alive and self.h11.their_state is not h11.DONE:
            await self._linger()
        return keep_alive and self.h11.our_state is h11.DONE

    async def _switch(self, headers: list[tuple[bytes, bytes]], session: WebSocketSession) -> None:
        """Send the 101 and run the WebSocket on this socket until it ends."""
        event = self.h11.next_event()  # the handshake has no body: its end is here
        if not isinstance(event, h11.EndOfMessage):
            raise PeerGone  # unreachable after the handshake checks; just close
        switch = h11.InformationalResponse(
            status_code=101, headers=[(b"server", SERVER_HEADER), *headers]
        )
        await self._write(self.h11.send(switch))
        # Loaded by the first WebSocket: a server that never upgrades skips the framing.
        from astrlite.http.websocket_channel import WebSocketChannel

        received, _ = self.h11.trailing_data
        options = self.options
        channel = WebSocketChannel(
            self.stream,
            bytes(received),
            max_message_bytes=options.max_json_bytes,
            write_timeout=options.write_timeout,
            keepalive=ws_keepalive(options),
        )
        self.lifecycle.websockets.add(channel)
        if self.lifecycle.stopping:
            channel.request_stop()
        try:
            await session(channel)
        finally:
            self.lifecycle.websockets.discard(channel)
            await channel.finish()

    def _log(
        self,
        method: str,
        target: bytes,
        request: Request | None,
        headers: Iterable[tuple[bytes, bytes]] | None,
        status: int,
        sent: int,
        started: float,
    ) -> None:
        seconds = time.perf_counter() - started
        metrics = self.app.metrics
        if metrics is not None:
            route = self.app.route_label(request.path) if request is not None else "other"
            metrics.request_done(route, method, status, seconds)
        if not access.enabled():
            return
        principal = request.principal if request is not None else None
        agent = next((v for k, v in headers or () if k == b"user-agent"), None)
        access.log(
            access.Access(
                client=self.client,
                key_id=principal.key_id if principal is not None else None,
                method=method,
                target=redact(target),
                status=status,
                sent=sent,
                seconds=seconds,
                user_agent=access.user_agent_of(agent),
            )
        )


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The declared body size (h11 has validated it); None for a chunked body."""
    for name, value in headers:
        if name == b"content-length":
            return int(value)
        if name == b"transfer-encoding":
            return None
    return 0


# The request line's bytes besides the method and the target.
REQUEST_LINE_EXTRA = len(b"  HTTP/1.1\r\n")


def _head_size(event: h11.Request, headers: list[tuple[bytes, bytes]]) -> int:
    line = len(event.method) + len(event.target) + REQUEST_LINE_EXTRA
    return line + sum(len(name) + len(value) + 4 for name, value in headers)


def _pairs(event: h11.Request) -> list[tuple[bytes, bytes]]:
    """The head's (lower-case name, value) pairs, read from h11's list at once: its
    Headers yields them one __getitem__ call at a time (h11 is pinned, pyproject.toml)."""
    return [(name, value) for _, name, value in event.headers._full_items]


class _PeerWatch:
    """Notices a client hanging up while a response streams, and cancels its connection.

    A callback on the socket becoming readable, not a task waiting on it: a held stream
    then costs no task, task group or coroutine frames. Bytes that arrive are pipelined
    requests: they are kept for the next exchange, and watching then stops
    (backpressure: at most one read)."""

    __slots__ = ("_connection", "_stop")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._stop: Callable[[], object] | None = None

    def start(self) -> None:
        self._stop = self._connection.stream.on_readable(self._readable)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def _readable(self) -> None:
        self._stop = None  # a watch fires once
        connection = self._connection
        try:
            data = connection.stream.try_receive(RECEIVE_SIZE)
        except GONE:
            data = b""
        if data is None:  # nothing after all: watch again
            self._stop = connection.stream.on_readable(self._readable)
        elif data:
            connection.h11.receive_data(data)
        elif connection.scope is not None:
            connection.scope.cancel()


class _Length:
    """Stands for file bytes in h11's framing, which needs only their number."""

    __slots__ = ("_length",)

    def __init__(self, length: int) -> None:
        self._length = length

    def __len__(self) -> int:
        return self._length


def _wake(waiter: asyncio.Future[bytes | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _returns(body: AsyncIterable[bytes]) -> bool:
    """Whether a generator body returns after its last piece: then it is closed, and
    needs no closing in a shielded scope. Anything it yields instead is dropped."""
    if type(body) is not AsyncGeneratorType:
        return False
    try:
        await anext(body)
    except StopAsyncIteration:
        return True
    return False


async def _close_body(body: object) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            await aclose()


def ws_keepalive(options: Options) -> float | None:
    """Seconds of silence before a WebSocket ping (W3): --sse-heartbeat, else 10; 0 none."""
    given = options.sse_heartbeat
    return (DEFAULT_SSE_HEARTBEAT if given is None else given) or None

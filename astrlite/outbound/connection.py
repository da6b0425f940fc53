"""One outbound connection: h11 over an anyio byte stream, the request written and its
response read as it arrives, every wait under a deadline."""

from __future__ import annotations

import logging
import math
import re
import select
import socket
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import suppress
from dataclasses import dataclass

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute

from astrlite.outbound import HttpClientError
from astrlite.outbound.chunked import ChunkedBody
from astrlite.outbound.urls import Proxy, Url

log = logging.getLogger("astrlite.http")

# h11's default is 16 KiB. APIs send a few hundred bytes of headers, but CDNs add cookies
# and policy headers; 64 KiB leaves room for those and still bounds memory per response.
MAX_RESPONSE_HEAD_BYTES = 64 * 1024
RECEIVE_BYTES = 64 * 1024  # anyio's default: a few TLS records per read
# Linux: a socket that sends within the delayed-ACK timeout of its last received segment
# (a request on a reused connection) enters "pingpong" mode and then holds back its ACKs
# up to 40 ms. An upstream writing small pieces without TCP_NODELAY (Python's http.server,
# cpp-httplib) holds each until the previous one is acknowledged (Nagle), so every turn
# after a connection's first would wait 40 ms for its first token. TCP_QUICKACK=1 leaves
# that mode, and only our next send re-enters it: setting it after each request's last
# write is enough (it is not sticky, so once per connection is not). macOS and Windows
# have no such option.
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
# Where h11 ends a head (its ReceiveBuffer.maybe_extract_lines): h11 is fed exactly the
# head's bytes, so that a chunked body after it can be decoded without h11.
_BLANK_LINE = re.compile(b"\n\r?\n")


class ConnectionLost(HttpClientError):
    """The connection broke while sending; retrying is safe only if nothing was sent."""


PoolKey = tuple[str, str, int, Proxy | None]


class Conn:
    """One connection: its byte stream and h11 state, used by one request at a time."""

    def __init__(self, stream: ByteStream, label: str, key: PoolKey) -> None:
        self.stream = stream
        self.label = label
        self.key = key
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD_BYTES)
        self.bytes_sent = 0
        self.head_seen = False
        self.eof = False
        self.pending = b""  # received after a response head, not fed to h11
        self.idle_since = 0.0
        self.socket: socket.socket | None = stream.extra(SocketAttribute.raw_socket, None)

    def encode(self, event: h11.Event) -> bytes:
        try:
            return self.h11.send(event) or b""
        except h11.LocalProtocolError as exc:  # e.g. a body longer than its Content-Length
            raise invalid_request(self.label, exc) from None

    def next_cycle(self) -> None:
        """Ready for the next request, after a complete exchange."""
        self.h11.start_next_cycle()
        self.bytes_sent = 0
        self.head_seen = False
        self.idle_since = time.monotonic()

    async def send(self, data: bytes, timeout: float) -> None:
        try:
            with anyio.fail_after(timeout):
                await self.stream.send(data)
        except TimeoutError:
            raise HttpClientError(f"timed out sending the request to {self.label}") from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ConnectionLost(f"connection to {self.label} lost: {reason(exc)}") from exc
        self.bytes_sent += len(data)

    def ack_promptly(self) -> None:
        """Acknowledge what the server sends at once until we send again (_TCP_QUICKACK)."""
        if _TCP_QUICKACK is not None and self.socket is not None:
            with suppress(OSError):  # closed under us: the next read reports it
                self.socket.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    def buffered_event(self) -> object:
        """The next event of what has already arrived, or h11.NEED_DATA."""
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise self._protocol_error(exc) from None

    async def next_event(self, timeout: float) -> object:
        while True:
            event = self.buffered_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self.receive(timeout))

    async def receive(self, timeout: float) -> bytes:
        """What arrives next, within timeout; b"" at the end of the stream."""
        try:
            # Once per read of a streamed body (per token): a bare cancel scope costs a
            # third less than fail_after, two generator context managers around one.
            with anyio.CancelScope(deadline=anyio.current_time() + timeout):
                return await self.stream.receive(RECEIVE_BYTES)
        except anyio.EndOfStream:
            self.eof = True
            return b""
        except (anyio.BrokenResourceError, OSError) as exc:
            if not self.head_seen and isinstance(exc.__cause__ or exc, ConnectionResetError):
                # A server that closes without reading our request resets rather than
                # closes (unread data in its buffer): to the user, the same event.
                raise HttpClientError(
                    f"connection closed by {self.label} before a response"
                ) from exc
            raise HttpClientError(f"connection to {self.label} lost: {reason(exc)}") from exc
        # Only the scope's deadline ends the block without a return.
        raise HttpClientError(
            f"timed out waiting for a response from {self.label} (no data for {timeout:g} s)"
        )

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> HttpClientError:
        if exc.error_status_hint == 431:
            return HttpClientError(f"response headers from {self.label} too large")
        if self.eof and not self.head_seen:
            return HttpClientError(f"connection closed by {self.label} before a response")
        if self.eof:
            return HttpClientError(
                f"connection closed by {self.label} before the response was complete"
            )
        return HttpClientError(f"malformed response from {self.label}: {exc}")

    async def read_head(self, timeout: float) -> h11.Response:
        while True:
            event = await self._next_head(timeout)
            if isinstance(event, h11.Response):
                self.head_seen = True
                size = sum(len(name) + len(value) + 4 for name, value in event.headers)
                if size > MAX_RESPONSE_HEAD_BYTES:  # arrived whole, past h11's buffer check
                    raise HttpClientError(f"response headers from {self.label} too large")
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise HttpClientError(f"malformed response from {self.label}: no response head")

    async def _next_head(self, timeout: float) -> object:
        """h11's event for the next head, h11 fed exactly its bytes: those after it stay in
        `pending`."""
        while True:
            data = self.pending
            end = head_end(data)
            if end:
                self.pending = data[end:]
                self.h11.receive_data(data[:end])
                return self.buffered_event()
            if len(data) > MAX_RESPONSE_HEAD_BYTES:
                raise HttpClientError(f"response headers from {self.label} too large")
            received = await self.receive(timeout)
            if not received:  # h11 tells what the end of the stream cut short
                self.pending = b""
                self.h11.receive_data(data)
                self.h11.receive_data(b"")
                return self.buffered_event()
            self.pending = data + received


def head_end(data: bytes) -> int:
    """The length of the head at the start of data, as h11 delimits it; 0 if incomplete."""
    if data[:1] == b"\n":
        return 1
    if data[:2] == b"\r\n":
        return 2
    match = _BLANK_LINE.search(data)
    return match.end() if match else 0


def reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return getattr(cause, "strerror", None) or str(cause) or type(cause).__name__


class Response:
    """A response whose head has arrived; the body is read on demand."""

    def __init__(self, conn: Conn, head: h11.Response, read_timeout: float) -> None:
        self.status: int = head.status_code
        self.headers: tuple[tuple[str, str], ...] = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers
        )
        self._conn = conn
        self._read_timeout = read_timeout
        self._error: HttpClientError | None = None  # met after data, raised on the next read
        self._chunked: ChunkedBody | None = None
        state = conn.h11
        # h11 holds none of the body yet: NEED_DATA unless the body is empty (HEAD, 204,
        # 304), and h11 refuses any Transfer-Encoding but chunked.
        if (
            state.their_state is h11.SEND_BODY
            and conn.buffered_event() is h11.NEED_DATA
            and any(name == b"transfer-encoding" for name, _ in head.headers)
        ):
            self._chunked = ChunkedBody()
            return
        if conn.pending:  # the start of a Content-Length or close-delimited body
            state.receive_data(conn.pending)
            conn.pending = b""

    def header(self, name: str) -> str | None:
        """The first value of a header (names are compared case-insensitively)."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    async def _next_chunk(self) -> bytes | None:
        if self._error is not None:
            raise self._error
        if self._chunked is not None:
            return await self._next_decoded(self._chunked)
        conn = self._conn
        while conn.h11.their_state is h11.SEND_BODY:
            event = await conn.next_event(self._read_timeout)
            if isinstance(event, h11.Data):
                return self._with_buffered(event.data)
        return None

    async def _next_decoded(self, body: ChunkedBody) -> bytes | None:
        """The next piece of a chunked body, decoded without h11: everything that has
        arrived, in one piece."""
        conn = self._conn
        while not body.done:
            data = conn.pending or await conn.receive(self._read_timeout)
            conn.pending = b""
            if not data:
                raise HttpClientError(
                    f"connection closed by {conn.label} before the response was complete"
                )
            payload = body.feed(data)
            if body.error is not None:
                self._error = HttpClientError(f"malformed response from {conn.label}: {body.error}")
            elif body.done:
                # What h11 would have seen of the end: its state becomes DONE, so the
                # connection is reused; bytes after the body keep it from being.
                conn.h11.receive_data(b"0\r\n\r\n")
                conn.buffered_event()
                conn.pending = body.leftover
            if payload:
                return payload
            if self._error is not None:
                raise self._error
        return None

    def _with_buffered(self, first: bytes) -> bytes:
        """`first` and every other piece of body that has already arrived, as one: a
        burst of small chunks (a streamed reply's tokens) costs the reader one pass."""
        conn = self._conn
        pieces = [first]
        try:
            while conn.h11.their_state is h11.SEND_BODY:
                event = conn.buffered_event()
                if event is h11.NEED_DATA:
                    break
                if isinstance(event, h11.Data):
                    pieces.append(event.data)
        except HttpClientError as error:
            self._error = error  # after the data that came before it
        return b"".join(pieces)

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive (read_timeout applies to each wait)."""
        # The response is its own iterator, not an async generator: leaving the loop
        # early then leaves nothing suspended that would need finalizing.
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def drain(self, limit: int, timeout: float) -> None:
        """Read and drop the rest of the body if it comes within `timeout` and `limit`,
        so the connection can be reused; otherwise it is closed when released."""
        received = 0
        with anyio.move_on_after(timeout):
            while (chunk := await self._next_chunk()) is not None:
                received += len(chunk)
                if received > limit:
                    return

    async def read(self, limit: int) -> bytes:
        """The whole body; HttpClientError if it is longer than limit bytes."""
        body = bytearray()
        while (chunk := await self._next_chunk()) is not None:
            body += chunk
            if len(body) > limit:
                raise HttpClientError(f"response from {self._conn.label} larger than {limit} bytes")
        return bytes(body)


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    url: Url
    head: h11.Request
    body: bytes | AsyncIterable[bytes] | None
    read_timeout: float


def request_head(
    method: str,
    url: Url,
    headers: Sequence[tuple[str, str]],
    body: bytes | AsyncIterable[bytes] | None,
) -> h11.Request:
    names = {name.lower() for name, _ in headers}
    extra = [] if "host" in names else [("Host", url.host_header)]
    if isinstance(body, bytes):
        extra.append(("Content-Length", str(len(body))))
    elif body is not None and "content-length" not in names:
        extra.append(("Transfer-Encoding", "chunked"))
    try:
        return h11.Request(method=method, target=url.target, headers=[*extra, *headers])
    except h11.LocalProtocolError as exc:
        raise invalid_request(url.authority, exc) from None


def invalid_request(label: str, exc: h11.LocalProtocolError) -> HttpClientError:
    # h11 quotes a bad header value, which may be a secret such as an API key.
    reason = str(exc)
    reason = "illegal header value" if reason.startswith("Illegal header value") else reason
    return HttpClientError(f"cannot send the request to {label}: {reason}")


async def exchange(conn: Conn, request: OutgoingRequest) -> Response:
    """Send the request and read the response head; close the connection on any failure."""
    try:
        await send_request(conn, request)
        conn.ack_promptly()
        head = await conn.read_head(request.read_timeout)
    except BaseException:
        await anyio.aclose_forcefully(conn.stream)
        raise
    return Response(conn, head, request.read_timeout)


async def send_request(conn: Conn, request: OutgoingRequest) -> None:
    timeout = request.read_timeout
    head = conn.encode(request.head)
    body = request.body
    if body is None or isinstance(body, bytes):
        # Head and body in one write (one syscall, one TCP segment when small).
        data = conn.encode(h11.Data(data=body)) if body else b""
        await conn.send(head + data + conn.encode(h11.EndOfMessage()), timeout)
        return
    await conn.send(head, timeout)
    async for chunk in body:
        if chunk:
            await conn.send(conn.encode(h11.Data(data=chunk)), timeout)
    await conn.send(conn.encode(h11.EndOfMessage()), timeout)


async def open_tcp(host: str, port: int, where: str, kind: str) -> ByteStream:
    try:
        return await anyio.connect_tcp(host, port)
    except socket.gaierror:
        raise HttpClientError(f"cannot resolve {kind}host {host}") from None
    except OSError as exc:
        cause = exc.__cause__ or exc
        errors = getattr(cause, "exceptions", None) or (cause,)
        if all(isinstance(error, ConnectionRefusedError) for error in errors):
            raise HttpClientError(f"connection refused by {where}") from None
        raise HttpClientError(f"cannot connect to {where}: {reason(errors[0])}") from None


async def tunnel(stream: ByteStream, url: Url, proxy: Proxy) -> None:
    """Ask the proxy for a tunnel to url's host and port (RFC 9110 §9.3.6)."""
    conn = Conn(stream, proxy.label, (url.scheme, url.host, url.port, proxy))
    # The caller's connect deadline bounds these waits.
    request = h11.Request(method="CONNECT", target=url.authority, headers=[("Host", url.authority)])
    await conn.send(conn.encode(request) + conn.encode(h11.EndOfMessage()), math.inf)
    head = await conn.read_head(math.inf)
    if not 200 <= head.status_code < 300:
        raise HttpClientError(
            f"{proxy.label} refused CONNECT to {url.authority}: HTTP {head.status_code}"
        )
    if conn.pending:
        raise HttpClientError(f"malformed response from {proxy.label}: data after CONNECT reply")


def still_open(stream: ByteStream) -> bool:
    """False when an idle connection was closed by the server (or sent stray bytes).

    An idle HTTP/1.1 connection has nothing to say, so a readable socket (EOF, a reset or
    data) means it is unusable. anyio pauses reading between receive() calls, so whatever
    arrived is still in the socket.
    """
    fd = stream.extra(SocketAttribute.raw_socket).fileno()
    if not hasattr(select, "poll"):  # Windows; select() is limited to fds below 1024 elsewhere
        return not select.select([fd], [], [], 0)[0]
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return not poller.poll(0)

"""A small outbound HTTP/1.1 client: h11 over anyio, stdlib ssl, CONNECT proxies, an idle pool.

Made for providers and platform adapters: the body is streamed as it arrives, every wait
has a deadline, and every failure is one HttpClientError whose text a user can act on.

    client = Client()
    async with client.request("POST", url, headers=[...], body=b"...") as response:
        async for chunk in response.aiter_bytes():
            ...
    await client.aclose()
"""

from __future__ import annotations

import logging
import math
import os
import select
import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSStream

log = logging.getLogger("astrlite.http")

# h11's default is 16 KiB. APIs send a few hundred bytes of headers, but CDNs add cookies
# and policy headers; 64 KiB leaves room for those and still bounds memory per response.
MAX_RESPONSE_HEAD_BYTES = 64 * 1024
RECEIVE_BYTES = 64 * 1024  # anyio's default: a few TLS records per read
# Below the 5 s keep-alive of uvicorn and astrlite itself (nginx: 75 s), so we drop an
# idle connection before a typical server does and rarely race its close.
IDLE_SECONDS = 4.0
# Providers and bot adapters talk to a handful of hosts, a few requests at a time.
MAX_IDLE_CONNECTIONS = 8
# For callers that set none; a provider passes its configured `timeout` per request.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpClientError(Exception):
    """The request failed; str(error) says why, in words a user can act on."""


class _ConnectionLost(HttpClientError):
    """The connection broke while sending; retrying is safe only if nothing was sent."""


@dataclass(frozen=True, slots=True)
class Url:
    scheme: str
    host: str  # lower case, IDNA-encoded, IPv6 without brackets
    port: int
    target: str  # path and query

    @property
    def authority(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def host_header(self) -> str:
        default = self.port == _DEFAULT_PORTS[self.scheme]
        return _bracketed(self.host) if default else self.authority


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int

    @property
    def label(self) -> str:
        return f"proxy {_bracketed(self.host)}:{self.port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_url(url: str) -> Url:
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise HttpClientError(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise HttpClientError(f"invalid URL {url!r}: use http:// or https://")
    if not host:
        raise HttpClientError(f"invalid URL {url!r}: no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Url(parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme], target)


def parse_proxy(proxy: str) -> Proxy:
    """An `http://host:port` CONNECT proxy (the scheme may be left out)."""
    try:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        port = parts.port or 80
    except ValueError as exc:
        raise HttpClientError(f"invalid proxy URL: {exc}") from None
    if parts.scheme != "http" or not parts.hostname or parts.username is not None:
        raise HttpClientError("unsupported proxy URL: use an http://host:port CONNECT proxy")
    return Proxy(parts.hostname, port)


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether no_proxy (curl's syntax: `*`, or names that match themselves and their
    subdomains, with or without a leading `.` or `*.`, each with an optional `:port`)
    covers host:port."""
    entries = no_proxy.lower().replace(",", " ").split()
    return any(_no_proxy_match(entry, host.lower(), port) for entry in entries)


def _no_proxy_match(entry: str, host: str, port: int) -> bool:
    if entry == "*":
        return True
    name, entry_port = _split_host_port(entry)
    if entry_port is not None and entry_port != port:
        return False
    name = name.removeprefix("*").removeprefix(".")
    return bool(name) and (host == name or host.endswith(f".{name}"))


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:  # a bare name or IPv6 address
        return entry, None
    return name, int(port) if port.isdigit() else None


@dataclass(frozen=True, slots=True)
class ProxyEnv:
    """The proxy environment variables, read once."""

    https: str | None
    http: str | None
    no_proxy: str

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> ProxyEnv:
        # Only the lower-case http_proxy: CGI servers set HTTP_PROXY from a request's
        # `Proxy:` header ("httpoxy", CVE-2016-5385).
        https = environ.get("https_proxy") or environ.get("HTTPS_PROXY")
        no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
        return cls(https, environ.get("http_proxy"), no_proxy)

    def proxy_for(self, url: Url) -> Proxy | None:
        name, value = (
            ("https_proxy", self.https) if url.scheme == "https" else ("http_proxy", self.http)
        )
        if not value or bypasses_proxy(url.host, url.port, self.no_proxy):
            return None
        try:
            return parse_proxy(value)
        except HttpClientError as exc:
            raise HttpClientError(f"{name}: {exc}") from None


_Key = tuple[str, str, int, Proxy | None]


class _Conn:
    """One connection: its byte stream and h11 state, used by one request at a time."""

    def __init__(self, stream: ByteStream, label: str, key: _Key) -> None:
        self.stream = stream
        self.label = label
        self.key = key
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD_BYTES)
        self.bytes_sent = 0
        self.head_seen = False
        self.eof = False
        self.idle_since = 0.0

    def encode(self, event: h11.Event) -> bytes:
        try:
            return self.h11.send(event) or b""
        except h11.LocalProtocolError as exc:  # e.g. a body longer than its Content-Length
            raise _invalid_request(self.label, exc) from None

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
            raise _ConnectionLost(f"connection to {self.label} lost: {_reason(exc)}") from exc
        self.bytes_sent += len(data)

    async def next_event(self, timeout: float) -> object:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise self._protocol_error(exc) from None
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self._receive(timeout))

    async def _receive(self, timeout: float) -> bytes:
        try:
            with anyio.fail_after(timeout):
                return await self.stream.receive(RECEIVE_BYTES)
        except TimeoutError:
            raise HttpClientError(
                f"timed out waiting for a response from {self.label} (no data for {timeout:g} s)"
            ) from None
        except anyio.EndOfStream:
            self.eof = True
            return b""
        except (anyio.BrokenResourceError, OSError) as exc:
            raise HttpClientError(f"connection to {self.label} lost: {_reason(exc)}") from exc

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
            event = await self.next_event(timeout)
            if isinstance(event, h11.Response):
                self.head_seen = True
                size = sum(len(name) + len(value) + 4 for name, value in event.headers)
                if size > MAX_RESPONSE_HEAD_BYTES:  # arrived whole, past h11's buffer check
                    raise HttpClientError(f"response headers from {self.label} too large")
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise HttpClientError(f"malformed response from {self.label}: no response head")


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return getattr(cause, "strerror", None) or str(cause) or type(cause).__name__


class Response:
    """A response whose head has arrived; the body is read on demand."""

    def __init__(self, conn: _Conn, head: h11.Response, read_timeout: float) -> None:
        self.status: int = head.status_code
        self.headers: tuple[tuple[str, str], ...] = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers
        )
        self._conn = conn
        self._read_timeout = read_timeout

    def header(self, name: str) -> str | None:
        """The first value of a header (names are compared case-insensitively)."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    async def _next_chunk(self) -> bytes | None:
        while self._conn.h11.their_state is h11.SEND_BODY:
            event = await self._conn.next_event(self._read_timeout)
            if isinstance(event, h11.Data):
                return bytes(event.data)
        return None

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
class _Request:
    url: Url
    head: h11.Request
    body: bytes | AsyncIterable[bytes] | None
    read_timeout: float


def _ssl_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise HttpClientError(f"cannot load ca_file {ca_file}: {_reason(exc)}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


class Client:
    """Connections for outbound requests: TLS settings, proxy choice, timeouts, idle pool.

    `proxy` applies to every request; without it the proxy environment variables do
    (unless trust_env is false). Idle connections are closed lazily, when the pool is
    next used, or by aclose().
    """

    def __init__(
        self,
        *,
        ca_file: str | None = None,
        verify: bool = True,
        proxy: str | None = None,
        trust_env: bool = True,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        idle_timeout: float = IDLE_SECONDS,
    ) -> None:
        self._ssl = _ssl_context(ca_file, verify)
        self._proxy = parse_proxy(proxy) if proxy else None
        self._env = ProxyEnv.read(os.environ if trust_env else {})
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._idle: list[_Conn] = []
        self._closed = False
        if not verify:
            log.warning("TLS certificate verification is disabled for outbound connections")

    async def aclose(self) -> None:
        """Close the idle connections; connections in use close when their request ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await anyio.aclose_forcefully(conn.stream)

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | AsyncIterable[bytes] | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> AsyncIterator[Response]:
        """Send a request; yields the response once its head has arrived.

        A bytes body is sent with Content-Length, an async iterable one chunked (unless
        headers set Content-Length), None sends no body. Host is added unless given. On
        exit the connection returns to the pool if the body was read to the end, else it
        is closed (also on error or cancellation).
        """
        target = parse_url(url)
        proxy = self._proxy or self._env.proxy_for(target)
        head = _request_head(method, target, headers, body)
        read_timeout = self._read_timeout if read_timeout is None else read_timeout
        request = _Request(target, head, body, read_timeout)
        key: _Key = (target.scheme, target.host, target.port, proxy)
        timeout = self._connect_timeout if connect_timeout is None else connect_timeout
        conn, response = await self._start(request, proxy, key, timeout)
        try:
            yield response
        finally:
            await self._release(conn)

    async def _start(
        self, request: _Request, proxy: Proxy | None, key: _Key, timeout: float
    ) -> tuple[_Conn, Response]:
        conn = await self._take_idle(key)
        if conn is not None:
            try:
                return conn, await _exchange(conn, request)
            except _ConnectionLost:
                if conn.bytes_sent:
                    raise
                # Closed by the server while idle and nothing was sent: safe to retry.
        conn = await self._connect(request.url, proxy, key, timeout)
        return conn, await _exchange(conn, request)

    async def _take_idle(self, key: _Key) -> _Conn | None:
        cutoff = time.monotonic() - self._idle_timeout
        stale = [c for c in self._idle if c.idle_since <= cutoff or not _still_open(c.stream)]
        # Settle the pool before the first await, so a concurrent request sees it whole.
        self._idle = [c for c in self._idle if c not in stale]
        conn = next((c for c in reversed(self._idle) if c.key == key), None)
        if conn is not None:
            self._idle.remove(conn)
        for dead in stale:
            await anyio.aclose_forcefully(dead.stream)
        return conn

    async def _release(self, conn: _Conn) -> None:
        state = conn.h11
        if self._closed or state.our_state is not h11.DONE or state.their_state is not h11.DONE:
            await anyio.aclose_forcefully(conn.stream)
            return
        conn.next_cycle()
        self._idle.append(conn)
        if len(self._idle) > MAX_IDLE_CONNECTIONS:
            await anyio.aclose_forcefully(self._idle.pop(0).stream)

    async def _connect(self, url: Url, proxy: Proxy | None, key: _Key, timeout: float) -> _Conn:
        where = proxy.label if proxy else url.authority
        try:
            with anyio.fail_after(timeout):
                if proxy is None:
                    stream: ByteStream = await _open_tcp(url.host, url.port, url.authority, "")
                else:
                    stream = await _open_tcp(proxy.host, proxy.port, where, "proxy ")
                try:
                    if proxy is not None:
                        await _tunnel(stream, url, proxy)
                    if url.scheme == "https":
                        stream = await self._handshake(stream, url)
                except BaseException:
                    await anyio.aclose_forcefully(stream)
                    raise
        except TimeoutError:
            raise HttpClientError(f"timed out connecting to {where}") from None
        return _Conn(stream, url.authority, key)

    async def _handshake(self, stream: ByteStream, url: Url) -> TLSStream:
        try:
            return await TLSStream.wrap(
                stream, hostname=url.host, ssl_context=self._ssl, standard_compatible=False
            )
        except ssl.SSLCertVerificationError as exc:
            reason = f"certificate verify failed: {exc.verify_message}"
        except ssl.SSLError as exc:
            reason = (exc.reason or str(exc)).lower().replace("_", " ")
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            reason = "the server closed the connection"
        raise HttpClientError(f"TLS handshake with {url.authority} failed: {reason}")


def _request_head(
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
        raise _invalid_request(url.authority, exc) from None


def _invalid_request(label: str, exc: h11.LocalProtocolError) -> HttpClientError:
    # h11 quotes a bad header value, which may be a secret such as an API key.
    reason = str(exc)
    reason = "illegal header value" if reason.startswith("Illegal header value") else reason
    return HttpClientError(f"cannot send the request to {label}: {reason}")


async def _exchange(conn: _Conn, request: _Request) -> Response:
    """Send the request and read the response head; close the connection on any failure."""
    try:
        await _send_request(conn, request)
        head = await conn.read_head(request.read_timeout)
    except BaseException:
        await anyio.aclose_forcefully(conn.stream)
        raise
    return Response(conn, head, request.read_timeout)


async def _send_request(conn: _Conn, request: _Request) -> None:
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


async def _open_tcp(host: str, port: int, where: str, kind: str) -> ByteStream:
    try:
        return await anyio.connect_tcp(host, port)
    except socket.gaierror:
        raise HttpClientError(f"cannot resolve {kind}host {host}") from None
    except OSError as exc:
        cause = exc.__cause__ or exc
        errors = getattr(cause, "exceptions", None) or (cause,)
        if all(isinstance(error, ConnectionRefusedError) for error in errors):
            raise HttpClientError(f"connection refused by {where}") from None
        raise HttpClientError(f"cannot connect to {where}: {_reason(errors[0])}") from None


async def _tunnel(stream: ByteStream, url: Url, proxy: Proxy) -> None:
    """Ask the proxy for a tunnel to url's host and port (RFC 9110 §9.3.6)."""
    conn = _Conn(stream, proxy.label, (url.scheme, url.host, url.port, proxy))
    # The caller's connect deadline bounds these waits.
    request = h11.Request(method="CONNECT", target=url.authority, headers=[("Host", url.authority)])
    await conn.send(conn.encode(request) + conn.encode(h11.EndOfMessage()), math.inf)
    head = await conn.read_head(math.inf)
    if not 200 <= head.status_code < 300:
        raise HttpClientError(
            f"{proxy.label} refused CONNECT to {url.authority}: HTTP {head.status_code}"
        )
    if conn.h11.trailing_data[0]:
        raise HttpClientError(f"malformed response from {proxy.label}: data after CONNECT reply")


def _still_open(stream: ByteStream) -> bool:
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

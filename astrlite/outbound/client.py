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

import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import h11
from anyio.abc import ByteStream

from astrlite.outbound import HttpClientError
from astrlite.outbound.connection import (
    Conn,
    ConnectionLost,
    OutgoingRequest,
    PoolKey,
    Response,
    exchange,
    log,
    open_tcp,
    reason,
    request_head,
    still_open,
    tunnel,
)
from astrlite.outbound.urls import Proxy, ProxyEnv, Url, parse_proxy, parse_url

if TYPE_CHECKING:
    import ssl

# Below the 5 s keep-alive of uvicorn and astrlite itself (nginx: 75 s), so we drop an
# idle connection before a typical server does and rarely race its close.
IDLE_SECONDS = 4.0
# Providers and bot adapters talk to a handful of hosts, a few requests at a time.
MAX_IDLE_CONNECTIONS = 8
# For callers that set none; a provider passes its configured `timeout` per request.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0


def _ssl_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    # Imported here, like anyio's TLS stream: a server talking only plain HTTP never loads
    # them, and loading the system's CA certificates costs ~100 ms.
    import ssl

    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise HttpClientError(f"cannot load ca_file {ca_file}: {reason(exc)}") from None
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
        self._verify = verify
        # A given ca_file is loaded now, so that a bad one stops the start; the default
        # context on the first HTTPS connection.
        self._ssl = _ssl_context(ca_file, verify) if ca_file else None
        self._proxy = parse_proxy(proxy) if proxy else None
        self._env = ProxyEnv.read(os.environ if trust_env else {})
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._idle: list[Conn] = []
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
        head = request_head(method, target, headers, body)
        read_timeout = self._read_timeout if read_timeout is None else read_timeout
        request = OutgoingRequest(target, head, body, read_timeout)
        key: PoolKey = (target.scheme, target.host, target.port, proxy)
        timeout = self._connect_timeout if connect_timeout is None else connect_timeout
        conn, response = await self._start(request, proxy, key, timeout)
        try:
            yield response
        finally:
            await self._release(conn)

    async def _start(
        self, request: OutgoingRequest, proxy: Proxy | None, key: PoolKey, timeout: float
    ) -> tuple[Conn, Response]:
        conn = await self._take_idle(key)
        if conn is not None:
            try:
                return conn, await exchange(conn, request)
            except ConnectionLost:
                if conn.bytes_sent:
                    raise
                # Closed by the server while idle and nothing was sent: safe to retry.
        conn = await self._connect(request.url, proxy, key, timeout)
        return conn, await exchange(conn, request)

    async def _take_idle(self, key: PoolKey) -> Conn | None:
        cutoff = time.monotonic() - self._idle_timeout
        stale = [c for c in self._idle if c.idle_since <= cutoff or not still_open(c.stream)]
        # Settle the pool before the first await, so a concurrent request sees it whole.
        self._idle = [c for c in self._idle if c not in stale]
        conn = next((c for c in reversed(self._idle) if c.key == key), None)
        if conn is not None:
            self._idle.remove(conn)
        for dead in stale:
            await anyio.aclose_forcefully(dead.stream)
        return conn

    async def _release(self, conn: Conn) -> None:
        state = conn.h11
        done = state.our_state is h11.DONE and state.their_state is h11.DONE
        # Bytes after the response: the server is out of step, and the next response would
        # start with them.
        stray = conn.pending or state.trailing_data[0]
        if self._closed or not done or stray:
            await anyio.aclose_forcefully(conn.stream)
            return
        conn.next_cycle()
        self._idle.append(conn)
        if len(self._idle) > MAX_IDLE_CONNECTIONS:
            await anyio.aclose_forcefully(self._idle.pop(0).stream)

    async def _connect(self, url: Url, proxy: Proxy | None, key: PoolKey, timeout: float) -> Conn:
        where = proxy.label if proxy else url.authority
        try:
            with anyio.fail_after(timeout):
                if proxy is None:
                    stream: ByteStream = await open_tcp(url.host, url.port, url.authority, "")
                else:
                    stream = await open_tcp(proxy.host, proxy.port, where, "proxy ")
                try:
                    if proxy is not None:
                        await tunnel(stream, url, proxy)
                    if url.scheme == "https":
                        stream = await self._handshake(stream, url)
                except BaseException:
                    await anyio.aclose_forcefully(stream)
                    raise
        except TimeoutError:
            raise HttpClientError(f"timed out connecting to {where}") from None
        return Conn(stream, url.authority, key)

    async def _handshake(self, stream: ByteStream, url: Url) -> ByteStream:
        import ssl

        from anyio.streams.tls import TLSStream

        if self._ssl is None:
            self._ssl = _ssl_context(None, self._verify)
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

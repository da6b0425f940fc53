"""Shared by the chat and openai_relay benchmarks: servers started with a chat config,
CPU time from /proc, and an asyncio HTTP/1.1 client that reads SSE responses in bulk.

The client must never be the bottleneck: it parses only the response head, then counts
``data: `` lines, heartbeats and one marker with ``bytes.count`` / ``in`` over whole
reads, and recognises the end of a chunked body by its last-chunk bytes. Every event
astrlite and the baselines send is a whole chunk, so no event straddles a chunk header.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BENCH_KEY, PYZ, Started, free_port, spawned

DATA = b"data: "
HEARTBEAT = b": heartbeat"
PLAIN = b'"type": "plain"'
LAST_CHUNK = b"\r\n0\r\n\r\n"
TAIL = 16  # longer than every pattern searched for
TICKS = os.sysconf("SC_CLK_TCK")


# -- servers ---------------------------------------------------------------------------


@contextmanager
def astrlite(
    config: Mapping[str, Any],
    files: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    module: bool = False,
    pyz: Path = PYZ,
) -> Iterator[Started]:
    """dist/astrlite.pyz, or another ``pyz`` (``module``: ``python -m astrlite``, to
    profile) on a fresh data dir holding ``config.json`` and ``files``."""
    with tempfile.TemporaryDirectory() as data_dir:
        Path(data_dir, "config.json").write_text(json.dumps(config))
        for name, text in (files or {}).items():
            Path(data_dir, name).write_text(text)
        port = free_port()
        program = ["-m", "astrlite"] if module else [str(pyz)]
        command = [sys.executable, *program, "--port", str(port), "--data-dir", data_dir]
        with spawned([*command, *args], port, "/api/v1/openapi.json") as started:
            yield started


@contextmanager
def uvicorn(app: str, env: Mapping[str, str] | None = None) -> Iterator[Started]:
    """A bare ASGI app (``module:attribute``) under uvicorn --http h11."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--http", "h11", "--port", str(port)]
    with spawned(command, port, "/", env) as started:
        yield started


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


# -- the client --------------------------------------------------------------------------


def post(path: str, payload: Any, key: bool = True, host: str = "127.0.0.1") -> bytes:
    body = json.dumps(payload).encode()
    auth = f"X-API-Key: {BENCH_KEY}\r\n" if key else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get(path: str, host: str = "127.0.0.1") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {BENCH_KEY}\r\n\r\n".encode()


@dataclass
class Exchange:
    """One request and its response, times in perf_counter seconds."""

    sent: float
    status: int = 0
    first_event: float = 0.0  # the first ``data:`` line
    first_marker: float = 0.0  # the first read holding the marker (0: never)
    ended: float = 0.0
    events: int = 0
    heartbeats: int = 0
    body_bytes: int = 0
    body: bytes = b""  # kept only for a Content-Length response

    @property
    def to_first_event(self) -> float:
        return self.first_event - self.sent

    @property
    def to_marker(self) -> float:
        return self.first_marker - self.sent

    @property
    def total(self) -> float:
        return self.ended - self.sent


class Client(asyncio.Protocol):
    """One keep-alive connection; ``exchange`` sends a request and reads its response
    (chunked or Content-Length). ``on_event`` is set once the first event arrives."""

    def __init__(self, marker: bytes = PLAIN) -> None:
        self._marker = marker
        self._transport: asyncio.Transport | None = None
        self._current: Exchange | None = None
        self._done: asyncio.Future[Exchange] | None = None
        self._head = b""
        self._in_body = False
        self._length: int | None = None
        self._tail = b""
        self.on_event = asyncio.Event()
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, host: str, port: int, marker: bytes = PLAIN) -> Client:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: cls(marker), host, port)
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError("connection closed mid-response"))

    def close(self) -> None:
        """Hang up, abandoning a response still coming."""
        if self._done is not None and not self._done.done():
            self._done.cancel()
        if self._transport is not None:
            self._transport.close()

    @property
    def current(self) -> Exchange | None:
        """The exchange whose response is still coming."""
        return self._current

    def send(self, request: bytes) -> asyncio.Future[Exchange]:
        """Start an exchange; the future resolves when the response has ended."""
        assert self._transport is not None and (self._done is None or self._done.done())
        self._current = Exchange(time.perf_counter())
        self._done = asyncio.get_running_loop().create_future()
        self._head, self._in_body, self._length, self._tail = b"", False, None, b""
        self.on_event = asyncio.Event()
        self._transport.write(request)
        # The client must not be what waits: acknowledge at once while the response
        # streams (a server without TCP_NODELAY would otherwise wait out a delayed ACK).
        sock = self._transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return self._done

    async def exchange(self, request: bytes, timeout: float = 60) -> Exchange:
        return await asyncio.wait_for(self.send(request), timeout)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        exchange = self._current
        if exchange is None:
            return
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._head[:end], self._head[end + 4 :]
            exchange.status = int(head[9:12])
            self._in_body = True
            for line in head.lower().split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    self._length = int(value)
        exchange.body_bytes += len(data)
        if self._length is not None:
            exchange.body += data
            if exchange.body_bytes >= self._length:
                self._finish(exchange, now)
            return
        seen = self._tail + data
        events = seen.count(DATA) - self._tail.count(DATA)
        if events:
            if not exchange.events:
                exchange.first_event = now
                self.on_event.set()
            exchange.events += events
        if HEARTBEAT in seen:
            exchange.heartbeats += seen.count(HEARTBEAT) - self._tail.count(HEARTBEAT)
        if not exchange.first_marker and self._marker in seen:
            exchange.first_marker = now
        self._tail = seen[-TAIL:]
        if self._tail.endswith(LAST_CHUNK):
            self._finish(exchange, now)

    def _finish(self, exchange: Exchange, now: float) -> None:
        exchange.ended = now
        self._current = None
        assert self._done is not None
        self._done.set_result(exchange)


async def connect_all(host: str, port: int, count: int, marker: bytes = PLAIN) -> list[Client]:
    clients = []
    for _ in range(count):  # one at a time: a burst of SYNs would overflow the backlog
        clients.append(await Client.connect(host, port, marker))
    return clients


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

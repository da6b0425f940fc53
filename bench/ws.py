"""Issue 13: chat over /api/v1/chat/ws (dist/astrlite.pyz, ``echo`` provider), against the
same astrlite's SSE turn and against a bare ``uvicorn --ws websockets`` app sending the
same frames (bench/baseline_ws.py), all measured in one run by one asyncio client here.

(a) a whole short turn, p50/p99, at concurrency 1 and 100: over WS and over SSE (the same
    astrlite process, 4 alternating rounds; SSE through the chat benchmark's client).
    Goal: WS <= SSE.
(b) events/s of one long turn on one socket, and of 100 concurrent turns on 100 sockets
    (best of 3 rounds, the two servers taking turns):
    astrlite against the uvicorn floor. Goal: >= 1.0x the floor.

The WS client must never be the bottleneck: it masks with a zero key (payload unchanged),
and reads server frames by their headers alone, looking only at the start of each payload
for the ``end`` event.

`python -m bench ws`, or `python -m bench.ws [ab]` (rebuild the .pyz first).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.common import BENCH_KEY, Started, free_port, spawned
from bench.streams import Client, astrlite, connect_all, percentile, post, raise_file_limit

BASELINE = "bench.baseline_ws:app"
ECHO_CONFIG = {"provider": "echo", "providers": [{"id": "echo", "type": "echo"}]}
WS_PATH = "/api/v1/chat/ws"
END = b'{"type": "end"'

SHORT_TEXT = "hello there"
SHORT_EVENTS = 8  # session_id, 3 deltas, agent_stats, complete, message_saved, end
LATENCY_SECONDS = 1.0  # per round
LATENCY_ROUNDS = 4  # WS and SSE take turns, so load elsewhere hits both alike
LATENCY_CONCURRENCY = (1, 100)
LONG_WORDS = 20_000  # (b) one socket: 20,006 frames
LONG_RUNS = 2
RATE_ROUNDS = 3
CONCURRENT = 100
CONCURRENT_WORDS = 2_000  # (b) 100 sockets: 200,600 frames
GOAL_RATIO = 1.0


def words(count: int) -> str:
    return " ".join(f"w{index:05d}" for index in range(count))


def client_frame(payload: bytes) -> bytes:
    """A masked text frame; the zero key leaves the payload as it is (RFC 6455 §5.3)."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return head + b"\x00\x00\x00\x00" + payload


def turn_message(text: str) -> bytes:
    return client_frame(json.dumps({"username": "bench", "message": text}).encode())


@dataclass
class Turn:
    sent: float
    first: float = 0.0
    ended: float = 0.0
    frames: int = 0

    @property
    def total(self) -> float:
        return self.ended - self.sent


class WsClient(asyncio.Protocol):
    """One WebSocket; ``turn`` sends a message and counts frames up to ``end``."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done: asyncio.Future[Turn] | None = None
        self._turn: Turn | None = None

    @classmethod
    async def connect(cls, host: str, port: int) -> WsClient:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(cls, host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        assert client._transport is not None
        client._transport.write(
            f"GET {WS_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-API-Key: {BENCH_KEY}\r\n\r\n".encode()
        )
        await client._open
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self._open, self._done):
            if future is not None and not future.done():
                future.set_exception(ConnectionError("connection closed"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def turn(self, message: bytes) -> Turn:
        assert self._transport is not None
        self._turn = Turn(time.perf_counter())
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(message)
        return await self._done

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if not self._open.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._open.set_exception(RuntimeError(buffer[:200].decode("latin-1")))
                return
            self._open.set_result(None)
            buffer = buffer[end + 4 :]
        turn = self._turn
        offset, size = 0, len(buffer)
        while size - offset >= 2:
            length = buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, offset + 2)
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, offset + 2)
                start = offset + 10
            if start + length > size:
                break
            if turn is not None:
                if not turn.frames:
                    turn.first = time.perf_counter()
                turn.frames += 1
                if buffer.startswith(END, start):
                    turn.ended = time.perf_counter()
                    self._turn = None
                    assert self._done is not None
                    self._done.set_result(turn)
                    turn = None
            offset = start + length
        self._buffer = buffer[offset:]


async def connect_ws(host: str, port: int, count: int) -> list[WsClient]:
    return [await WsClient.connect(host, port) for _ in range(count)]


def check(turn: Turn, frames: int) -> Turn:
    if turn.frames != frames:
        raise RuntimeError(f"bad turn: {turn.frames} frames, expected {frames}")
    return turn


# -- (a) turn latency, WS against SSE on the same server --------------------------------


async def ws_latency(host: str, port: int, concurrency: int) -> list[float]:
    clients = await connect_ws(host, port, concurrency)
    message = turn_message(SHORT_TEXT)
    totals: list[float] = []
    deadline = time.perf_counter() + LATENCY_SECONDS

    async def worker(client: WsClient) -> None:
        while time.perf_counter() < deadline:
            totals.append(check(await client.turn(message), SHORT_EVENTS).total * 1000)

    await asyncio.gather(*(worker(client) for client in clients))
    for client in clients:
        client.close()
    return totals


async def sse_latency(host: str, port: int, concurrency: int) -> list[float]:
    clients = await connect_all(host, port, concurrency)
    request = post("/api/v1/chat", {"username": "bench", "message": SHORT_TEXT})
    totals: list[float] = []
    deadline = time.perf_counter() + LATENCY_SECONDS

    async def worker(client: Client) -> None:
        while time.perf_counter() < deadline:
            exchange = await client.exchange(request)
            if exchange.status != 200 or exchange.events != SHORT_EVENTS:
                raise RuntimeError(f"bad SSE turn: {exchange.status}, {exchange.events}")
            totals.append(exchange.total * 1000)

    await asyncio.gather(*(worker(client) for client in clients))
    for client in clients:
        client.close()
    return totals


# -- (b) events/s -------------------------------------------------------------------------


async def one_socket(host: str, port: int) -> float:
    (client,) = await connect_ws(host, port, 1)
    message = turn_message(words(LONG_WORDS))
    rates = []
    for _ in range(LONG_RUNS):
        done = check(await client.turn(message), LONG_WORDS + 6)
        rates.append(done.frames / done.total)
    client.close()
    return max(rates)


async def many_sockets(host: str, port: int) -> float:
    clients = await connect_ws(host, port, CONCURRENT)
    message = turn_message(words(CONCURRENT_WORDS))
    started = time.perf_counter()
    done = await asyncio.gather(*(client.turn(message) for client in clients))
    elapsed = max(turn.ended for turn in done) - started
    for client, turn in zip(clients, done, strict=True):
        check(turn, CONCURRENT_WORDS + 6)
        client.close()
    return sum(turn.frames for turn in done) / elapsed


async def warm_up(host: str, port: int) -> None:
    (client,) = await connect_ws(host, port, 1)
    for _ in range(20):
        await client.turn(turn_message(words(200)))
    client.close()


async def rates(ours: Started, base: Started) -> dict[str, tuple[float, float]]:
    """Best events/s of RATE_ROUNDS, the two servers taking turns (the machine is shared:
    alternating keeps a burst of load elsewhere from favouring one side)."""
    await warm_up(*ours.address)
    await warm_up(*base.address)
    best = {"astrlite": (0.0, 0.0), "uvicorn": (0.0, 0.0)}
    for _ in range(RATE_ROUNDS):
        for name, server in (("astrlite", ours), ("uvicorn", base)):
            one = await one_socket(*server.address)
            many = await many_sockets(*server.address)
            best[name] = (max(best[name][0], one), max(best[name][1], many))
    return best


async def latencies(server: Started) -> dict[str, dict[int, list[float]]]:
    await warm_up(*server.address)
    found: dict[str, dict[int, list[float]]] = {"ws": {}, "sse": {}}
    for concurrency in LATENCY_CONCURRENCY:
        ws_ms: list[float] = []
        sse_ms: list[float] = []
        for _ in range(LATENCY_ROUNDS):
            ws_ms += await ws_latency(*server.address, concurrency)
            sse_ms += await sse_latency(*server.address, concurrency)
        found["ws"][concurrency], found["sse"][concurrency] = ws_ms, sse_ms
    return found


@contextmanager
def uvicorn_ws(app: str) -> Iterator[Started]:
    """A bare ASGI app under uvicorn --http h11 --ws websockets."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--http", "h11", "--ws", "websockets"]
    with spawned([*command, "--port", str(port)], port, "/") as started:
        yield started


def main(parts: str = "ab") -> None:
    raise_file_limit(CONCURRENT * 2 + 256)
    found = best = None
    with astrlite(ECHO_CONFIG) as ours:
        if "a" in parts:
            found = asyncio.run(latencies(ours))
        if "b" in parts:
            with uvicorn_ws(BASELINE) as base:
                best = asyncio.run(rates(ours, base))
    if found is not None:
        seconds = LATENCY_SECONDS * LATENCY_ROUNDS
        for concurrency in LATENCY_CONCURRENCY:
            ws_ms, sse_ms = found["ws"][concurrency], found["sse"][concurrency]
            ws50, sse50 = percentile(ws_ms, 0.5), percentile(sse_ms, 0.5)
            print(
                f"(a) short turn, concurrency {concurrency}: WS p50 {ws50:.2f} ms p99 "
                f"{percentile(ws_ms, 0.99):.2f} ms ({len(ws_ms) / seconds:,.0f} "
                f"turns/s); SSE p50 {sse50:.2f} ms p99 {percentile(sse_ms, 0.99):.2f} ms "
                f"({len(sse_ms) / seconds:,.0f} turns/s); WS/SSE p50 "
                f"{ws50 / sse50:.2f}x (goal <= 1.0x)"
            )
    if best is not None:
        for index, label in enumerate(("1 socket", f"{CONCURRENT} sockets")):
            mine, floor = best["astrlite"][index], best["uvicorn"][index]
            print(
                f"(b) events/s, {label} (best of {RATE_ROUNDS}): astrlite {mine:,.0f}, "
                f"uvicorn --ws websockets {floor:,.0f}, ratio {mine / floor:.2f}x "
                f"(goal >= {GOAL_RATIO:.1f}x)"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ab")

"""Issue 5: POST /api/v1/chat streaming with the ``echo`` provider (dist/astrlite.pyz),
beside a bare uvicorn --http h11 app streaming the same events (bench/baseline_sse.py),
both measured in the same run by one asyncio client in this process.

(a) events/s of one long streamed reply, and of 100 concurrent ones;
(b) time to the first event (``session_id``) and to the first reply delta across 100
    concurrent turns of distinct sessions;
(c) p50/p99 of a whole short turn, keep-alive, at concurrency 1 and 32;
(d) 1,000 streams held open (a ``scripted`` rule sleeping before its reply, heartbeats
    every second): RSS per open stream, and GET /api/v1/im/bots latency meanwhile.

`python -m bench chat`, or `python -m bench.chat [abcd]` for some parts (rebuild the .pyz
first).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

from bench.common import rss_kib
from bench.streams import (
    Client,
    Exchange,
    astrlite,
    connect_all,
    get,
    percentile,
    post,
    raise_file_limit,
    uvicorn,
)

BASELINE = "bench.baseline_sse:app"
ECHO_CONFIG = {"provider": "echo", "providers": [{"id": "echo", "type": "echo"}]}
CHAT = "/api/v1/chat"
BOTS = "/api/v1/im/bots"

LONG_WORDS = 20_000  # (a) one stream: 20,006 events
LONG_RUNS = 3
CONCURRENT = 100
CONCURRENT_WORDS = 2_000  # (a) 100 streams: 200,600 events
FIRST_ROUNDS = 5  # (b)
SHORT_TEXT = "hello there"
SHORT_EVENTS = 8  # session_id, 3 deltas, agent_stats, complete, message_saved, end
LATENCY_SECONDS = 3.0
LATENCY_CONCURRENCY = (1, 32)
HELD = 1000  # (d)
HEARTBEAT_SECONDS = 1.0
HOLD_CONFIG = {
    "provider": "echo",
    "providers": [
        {"id": "echo", "type": "echo"},
        {"id": "hold", "type": "scripted", "rules_file": "rules.json"},
    ],
}
HOLD_RULES = {"rules": [{"match": "hold", "reply": "released", "delay_ms": 600_000}]}
GOAL_RATIO = 1.0
GOAL_FIRST_MS = 50.0
GOAL_STREAM_KIB = 20.0  # issue 17


def words(count: int) -> str:
    return " ".join(f"w{index:05d}" for index in range(count))


def chat(text: str, **extra: object) -> bytes:
    return post(CHAT, {"username": "bench", "message": text, **extra})


def check(exchange: Exchange, events: int | None = None) -> Exchange:
    if exchange.status != 200 or (events is not None and exchange.events != events):
        raise RuntimeError(f"bad stream: status {exchange.status}, {exchange.events} events")
    return exchange


# -- (a) (b) (c): one server ----------------------------------------------------------


async def one_long(host: str, port: int) -> float:
    """Best events/s of LONG_RUNS single long streams."""
    client = await Client.connect(host, port)
    rates = []
    for _ in range(LONG_RUNS):
        done = check(await client.exchange(chat(words(LONG_WORDS))), LONG_WORDS + 6)
        rates.append(done.events / done.total)
    client.close()
    return max(rates)


async def many_long(host: str, port: int) -> float:
    """events/s of CONCURRENT streams of CONCURRENT_WORDS words, start to last end."""
    clients = await connect_all(host, port, CONCURRENT)
    request = chat(words(CONCURRENT_WORDS))
    started = time.perf_counter()
    done = await asyncio.gather(*(client.send(request) for client in clients))
    elapsed = max(exchange.ended for exchange in done) - started
    for client, exchange in zip(clients, done, strict=True):
        check(exchange, CONCURRENT_WORDS + 6)
        client.close()
    return sum(exchange.events for exchange in done) / elapsed


async def first_events(host: str, port: int) -> tuple[list[float], list[float]]:
    """Per round (max over CONCURRENT turns): ms to the first event, to the first delta."""
    first, delta = [], []
    for _ in range(FIRST_ROUNDS):
        clients = await connect_all(host, port, CONCURRENT)
        done = await asyncio.gather(*(client.send(chat(SHORT_TEXT)) for client in clients))
        first.append(max(check(e).to_first_event for e in done) * 1000)
        delta.append(max(e.to_marker for e in done) * 1000)
        for client in clients:
            client.close()
    return first, delta


async def turn_latency(host: str, port: int, concurrency: int) -> tuple[float, float, float]:
    """p50 ms, p99 ms and turns/s of whole short turns over keep-alive connections."""
    clients = await connect_all(host, port, concurrency)
    request = chat(SHORT_TEXT)
    totals: list[float] = []
    deadline = time.perf_counter() + LATENCY_SECONDS

    async def worker(client: Client) -> None:
        while time.perf_counter() < deadline:
            totals.append(check(await client.exchange(request), SHORT_EVENTS).total)

    await asyncio.gather(*(worker(client) for client in clients))
    for client in clients:
        client.close()
    ms = [t * 1000 for t in totals]
    return percentile(ms, 0.5), percentile(ms, 0.99), len(ms) / LATENCY_SECONDS


@dataclass
class Results:
    """One server's figures for the parts that ran."""

    one: float | None = None  # (a) events/s
    many: float | None = None
    first: list[float] | None = None  # (b) per round, max ms to the first event
    delta: list[float] | None = None  # (b) per round, max ms to the first delta
    latency: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # (c)


async def measure(host: str, port: int, parts: str) -> Results:
    warm = await Client.connect(host, port)
    for _ in range(20):
        check(await warm.exchange(chat(words(200))))
    warm.close()
    results = Results()
    if "a" in parts:
        results.one = await one_long(host, port)
        results.many = await many_long(host, port)
    if "b" in parts:
        results.first, results.delta = await first_events(host, port)
    if "c" in parts:
        for concurrency in LATENCY_CONCURRENCY:
            results.latency[concurrency] = await turn_latency(host, port, concurrency)
    return results


# -- (d) held streams ------------------------------------------------------------------


async def bots_latency(host: str, port: int, count: int = 50) -> tuple[float, float]:
    """p50 and max ms of sequential authenticated GET /api/v1/im/bots."""
    client = await Client.connect(host, port)
    times = []
    for _ in range(count):
        exchange = await client.exchange(get(BOTS))
        if exchange.status != 200:
            raise RuntimeError(f"GET {BOTS}: {exchange.status}")
        times.append(exchange.total * 1000)
        await asyncio.sleep(0.01)
    client.close()
    return statistics.median(times), max(times)


async def hold(host: str, port: int, pid: int) -> dict[str, float]:
    warm = await Client.connect(host, port)
    for _ in range(20):
        check(await warm.exchange(chat(words(50))))
    warm.close()
    idle_bots = await bots_latency(host, port)
    await asyncio.sleep(0.2)
    before = rss_kib(pid)
    clients = await connect_all(host, port, HELD)
    request = chat("hold", selected_provider="hold")
    started = time.perf_counter()
    for client in clients:
        client.send(request)
    await asyncio.gather(*(client.on_event.wait() for client in clients))
    all_open = time.perf_counter() - started
    busy_bots = await bots_latency(host, port)  # ~0.6 s: heartbeats go out meanwhile
    await asyncio.sleep(HEARTBEAT_SECONDS)
    after = rss_kib(pid)
    beats = [client.current.heartbeats if client.current else 0 for client in clients]
    for client in clients:
        client.close()
    return {
        "before_mib": before / 1024,
        "after_mib": after / 1024,
        "per_stream_kib": (after - before) / HELD,
        "open_s": all_open,
        "min_heartbeats": min(beats),
        "idle_p50": idle_bots[0],
        "idle_max": idle_bots[1],
        "busy_p50": busy_bots[0],
        "busy_max": busy_bots[1],
    }


# -- report ----------------------------------------------------------------------------


def main(parts: str = "abcd") -> None:
    """``parts``: which of (a)-(d) to run."""
    raise_file_limit(HELD + 256)
    if set(parts) & set("abc"):
        with astrlite(ECHO_CONFIG) as ours:
            mine = asyncio.run(measure(*ours.address, parts))
        with uvicorn(BASELINE) as base:
            theirs = asyncio.run(measure(*base.address, parts))
        report(mine, theirs)
    if "d" in parts:
        files = {"rules.json": json.dumps(HOLD_RULES)}
        args = ("--sse-heartbeat", str(HEARTBEAT_SECONDS), "--shutdown-grace", "1")
        with astrlite(HOLD_CONFIG, files, args) as ours:
            report_held(asyncio.run(hold(*ours.address, ours.process.pid)))


def report(mine: Results, theirs: Results) -> None:
    for label, ours, base in (
        ("1 stream", mine.one, theirs.one),
        (f"{CONCURRENT} streams", mine.many, theirs.many),
    ):
        if ours is not None and base is not None:
            print(
                f"(a) events/s, {label}: astrlite {ours:,.0f}, uvicorn {base:,.0f}, "
                f"ratio {ours / base:.2f}x (goal >= {GOAL_RATIO:.1f}x)"
            )
    for name, result in (("astrlite", mine), ("uvicorn", theirs)):
        if result.first is not None and result.delta is not None:
            print(
                f"(b) {CONCURRENT} concurrent turns, {name}: first event max "
                f"{statistics.median(result.first):.1f} ms (rounds {_ms(result.first)}), "
                f"first delta max {statistics.median(result.delta):.1f} ms "
                f"(rounds {_ms(result.delta)})"
                + (f" (goal <= {GOAL_FIRST_MS:.0f} ms)" if name == "astrlite" else "")
            )
    for concurrency in LATENCY_CONCURRENCY:
        for name, result in (("astrlite", mine), ("uvicorn", theirs)):
            if concurrency in result.latency:
                p50, p99, rate = result.latency[concurrency]
                print(
                    f"(c) short turn, concurrency {concurrency}, {name}: p50 {p50:.2f} ms, "
                    f"p99 {p99:.2f} ms, {rate:,.0f} turns/s"
                )


def report_held(held: dict[str, float]) -> None:
    print(
        f"(d) {HELD} held streams: RSS {held['before_mib']:.1f} -> {held['after_mib']:.1f} "
        f"MiB, {held['per_stream_kib']:.1f} KiB per stream (goal <= {GOAL_STREAM_KIB:.0f} "
        f"KiB); all open in {held['open_s'] * 1000:.0f} ms; heartbeats >= "
        f"{held['min_heartbeats']:.0f} each"
    )
    print(
        f"(d) GET {BOTS} meanwhile: p50 {held['busy_p50']:.2f} ms, max "
        f"{held['busy_max']:.2f} ms (idle: p50 {held['idle_p50']:.2f} ms, max "
        f"{held['idle_max']:.2f} ms)"
    )


def _ms(values: list[float]) -> str:
    return " ".join(f"{value:.0f}" for value in values)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "abcd")

"""Issues 6 and 17: a streamed chat relayed from an OpenAI-compatible upstream through
astrlite (the ``openai`` provider, dist/astrlite.pyz), beside a client reading the same
upstream directly and beside the floor, a bare uvicorn --http h11 app relaying it
(bench/baseline_relay.py), all in the same run.

Two upstreams, each its own process sending the same bytes: ``http.server`` (keep-alive,
unbuffered, one write per chunk, no TCP_NODELAY: bench/fake_openai_stdlib.py) and a raw
asyncio server with TCP_NODELAY (bench/fake_openai.py). Each streams TOKENS tokens, one
chunk every GAP_MS (a fast local model), then usage and ``[DONE]``.

Paced (per upstream): one keep-alive connection each for the direct client, astrlite
(POST /api/v1/chat, a new session each turn) and the floor; BLOCKS rounds in which each
runs TURNS turns back to back (a pooled upstream connection is reused at once, as in a
real conversation), in rotating order. Per turn, from the request's first byte: time to
the first token (the first ``content`` chunk direct, the first ``plain`` event relayed)
and to the last byte. Also each server's CPU per relayed token, and how many upstream
connections astrlite opened (the upstream counts them).

Unpaced (asyncio upstream, tokens back to back): tokens/s of one stream, and of STREAMS
concurrent streams with the p50 time to their first token, astrlite beside the floor,
REPS interleaved repetitions, medians; with each server's CPU per token over the burst.

`python -m bench openai_relay [--unpaced-only] [--before PYZ] [--reps N]` (rebuild the
.pyz first: `make dist`). ``--before`` also runs another build (e.g. main's, copied
aside before a change) as one more side, interleaved with the others.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Started, free_port, spawned
from bench.streams import Client, Exchange, astrlite, connect_all, cpu_seconds, post, uvicorn

TOKENS = 200
GAP_MS = 2.0  # 500 tokens/s: faster than any edge model, so the relay's cost shows
BLOCKS = 5
TURNS = 4
WARM_TURNS = 2
STREAMS = 100
REPS = 3
CONTENT = b'"content"'
PLAIN = b'"type": "plain"'
UPSTREAMS = {"http.server": "bench.fake_openai_stdlib", "asyncio": "bench.fake_openai"}
FLOOR = "bench.baseline_relay:app"
GOAL_FIRST_MS = 2.0
GOAL_TOTAL = 0.05
GOAL_RATIO = 1.0


@contextmanager
def upstream(module: str, gap_ms: float) -> Iterator[Started]:
    port = free_port()
    command = [sys.executable, "-m", module, str(port), str(TOKENS), str(gap_ms)]
    with spawned(command, port, "/") as started:
        yield started


def config(base_url: str) -> dict[str, object]:
    entry = {"id": "up", "type": "openai", "base_url": base_url, "model": "bench"}
    return {"provider": "up", "providers": [entry], "streaming": True}


@contextmanager
def servers(
    module: str, gap_ms: float, before: Path | None = None
) -> Iterator[tuple[Started, Started, Started, Started | None]]:
    """The upstream, astrlite relaying it, the floor relaying it, and another build of
    astrlite relaying it if `before` names one."""
    with ExitStack() as stack:
        up = stack.enter_context(upstream(module, gap_ms))
        ours = stack.enter_context(astrlite(config(f"{up.url}/v1")))
        floor = stack.enter_context(uvicorn(FLOOR, {"BENCH_UPSTREAM": f"127.0.0.1:{up.port}"}))
        other = None
        if before is not None:
            other = stack.enter_context(astrlite(config(f"{up.url}/v1"), pyz=before))
        yield up, ours, floor, other


DIRECT = post(
    "/v1/chat/completions",
    {
        "model": "bench",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Tell me a story."},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    key=False,
)
RELAYED = post("/api/v1/chat", {"username": "bench", "message": "Tell me a story."})


def check(exchange: Exchange, relayed: bool) -> Exchange:
    if exchange.status != 200 or not exchange.first_marker:
        raise RuntimeError(f"bad stream: status {exchange.status}, {exchange.events} events")
    if relayed and exchange.events < TOKENS:
        raise RuntimeError(f"relayed {exchange.events} events for {TOKENS} tokens")
    return exchange


@dataclass
class Side:
    """One way of reading the upstream: its client, its turns, its server's process."""

    name: str
    address: tuple[str, int]
    marker: bytes
    request: bytes
    pid: int | None = None
    client: Client | None = None
    connections: int = 0
    turns: list[Exchange] = field(default_factory=list)
    later_turns: list[Exchange] = field(default_factory=list)  # 2nd+ of each block
    cpu: float = 0.0

    async def block(self, turns: int, keep: bool = True) -> None:
        if self.client is None or self.client.closed.is_set():
            # Idle through the other sides' blocks: past a server's keep-alive timeout.
            self.client = await Client.connect(*self.address, marker=self.marker)
            self.connections += 1
        before = cpu_seconds(self.pid) if self.pid else 0.0
        for index in range(turns):
            done = check(await self.client.exchange(self.request), self.name != "direct")
            if keep:
                self.turns.append(done)
                if index:
                    self.later_turns.append(done)
        if keep and self.pid:
            await asyncio.sleep(0.02)  # astrlite's history write after the last turn
            self.cpu += cpu_seconds(self.pid) - before

    def first_ms(self, later: bool = False) -> float:
        turns = self.later_turns if later else self.turns
        return statistics.median(e.to_marker for e in turns) * 1000

    def total_ms(self) -> float:
        return statistics.median(e.total for e in self.turns) * 1000

    def cpu_per_token_us(self) -> float:
        return self.cpu / (len(self.turns) * TOKENS) * 1e6


async def paced(
    up: Started, ours: Started, floor: Started, before: Started | None = None
) -> tuple[list[Side], int]:
    sides = [
        Side("direct", up.address, CONTENT, DIRECT),
        Side("astrlite", ours.address, PLAIN, RELAYED, ours.process.pid),
        Side("floor", floor.address, PLAIN, RELAYED, floor.process.pid),
    ]
    if before is not None:
        sides.append(Side("before", before.address, PLAIN, RELAYED, before.process.pid))
    for side in sides:
        await side.block(WARM_TURNS, keep=False)
    for index in range(BLOCKS):
        turn = index % len(sides)
        for side in sides[turn:] + sides[:turn]:
            await side.block(TURNS)
    probe_client = await Client.connect(*up.address)
    probe = await probe_client.exchange(f"GET / HTTP/1.1\r\nHost: {up.address[0]}\r\n\r\n".encode())
    probe_client.close()
    for side in sides:
        if side.client is not None:
            side.client.close()
    # Less the start-up probe's, this one's, the direct client's and the floor's (and
    # the other build's, when there is one: not told apart, so not counted).
    others = 2 + sides[0].connections + sides[2].connections
    return sides, -1 if before else int(probe.body) - others


async def one_stream(address: tuple[str, int]) -> float:
    """tokens/s of one unpaced stream (best of TURNS turns on one connection)."""
    client = await Client.connect(*address)
    await client.exchange(RELAYED)
    rates = [TOKENS / check(await client.exchange(RELAYED), True).total for _ in range(TURNS)]
    client.close()
    return max(rates)


async def many_streams(server: Started) -> tuple[float, float, float]:
    """tokens/s of STREAMS concurrent unpaced streams, their p50 ms to the first token
    and the server's CPU per token (us) over them."""
    clients = await connect_all(*server.address, STREAMS)
    pid = server.process.pid
    before = cpu_seconds(pid)
    started = time.perf_counter()
    done = await asyncio.gather(*(client.send(RELAYED) for client in clients))
    elapsed = max(exchange.ended for exchange in done) - started
    cpu = (cpu_seconds(pid) - before) / (STREAMS * TOKENS) * 1e6
    for client, exchange in zip(clients, done, strict=True):
        check(exchange, True)
        client.close()
    first = statistics.median(e.to_marker for e in done) * 1000
    return STREAMS * TOKENS / elapsed, first, cpu


async def unpaced(servers: dict[str, Started], reps: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}
    for rep in range(reps):
        names = list(servers)
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            rate = await one_stream(servers[name].address)
            many, first, cpu = await many_streams(servers[name])
            for key, value in (("one", rate), ("many", many), ("first", first), ("cpu", cpu)):
                figures.setdefault(f"{name} {key}", []).append(value)
    return figures


def report_paced(label: str, sides: list[Side], connections: int) -> None:
    direct, ours, floor = sides[:3]
    d_first = direct.first_ms()
    print(
        f"{label}: first token p50, direct {d_first:.2f} ms; added by astrlite "
        f"{ours.first_ms() - d_first:+.2f} ms (turns after a block's first "
        f"{ours.first_ms(True) - direct.first_ms(True):+.2f} ms), by the floor "
        f"{floor.first_ms() - d_first:+.2f} ms (goal: astrlite <= {GOAL_FIRST_MS:g} ms)"
    )
    d_total = direct.total_ms()
    print(
        f"{label}: total p50, direct {d_total:.1f} ms; added by astrlite "
        f"{(ours.total_ms() / d_total - 1) * 100:+.1f}%, by the floor "
        f"{(floor.total_ms() / d_total - 1) * 100:+.1f}% (goal: astrlite <= {GOAL_TOTAL:.0%})"
    )
    opened = (
        f"; upstream connections opened by astrlite: {connections} for "
        f"{BLOCKS * TURNS + WARM_TURNS} turns on {ours.connections} client connections"
    )
    print(
        f"{label}: CPU per relayed token, astrlite {ours.cpu_per_token_us():.1f} us, floor "
        f"{floor.cpu_per_token_us():.1f} us{opened if connections >= 0 else ''}"
    )
    for other in sides[3:]:
        print(
            f"{label}: {other.name}: first token added {other.first_ms() - d_first:+.2f} ms, "
            f"total added {(other.total_ms() / d_total - 1) * 100:+.1f}%, CPU per relayed "
            f"token {other.cpu_per_token_us():.1f} us"
        )


def report_unpaced(figures: dict[str, list[float]], reps: int, before: bool) -> None:
    m = {key: statistics.median(values) for key, values in figures.items()}
    rows = (
        ("tokens/s, 1 stream", "one", True),
        (f"tokens/s, {STREAMS} streams", "many", True),
        (f"first token p50 ms, {STREAMS} streams", "first", False),
        (f"CPU us per token, {STREAMS} streams", "cpu", False),
    )
    for text, key, higher in rows:
        ours, floor = m[f"astrlite {key}"], m[f"floor {key}"]
        goal = f"goal >= {GOAL_RATIO:g}" if higher else f"goal <= {GOAL_RATIO:g}"
        earlier = ""
        if before:
            old = m[f"before {key}"]
            earlier = f", before {old:,.1f} (ratio {old / floor:.2f})"
        print(
            f"unpaced, {text}: astrlite {ours:,.1f}, floor {floor:,.1f}, "
            f"ratio {ours / floor:.2f} ({goal}; medians of {reps}){earlier}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench openai_relay")
    parser.add_argument("--unpaced-only", action="store_true")
    parser.add_argument("--before", type=Path, help="also run this .pyz, interleaved")
    parser.add_argument("--reps", type=int, default=REPS)
    args, _ = parser.parse_known_args(sys.argv[1:])
    if not args.unpaced_only:
        for label, module in UPSTREAMS.items():
            with servers(module, GAP_MS, args.before) as (up, ours, floor, before):
                sides, connections = asyncio.run(paced(up, ours, floor, before))
            label = f"{label} upstream, {TOKENS} tokens {GAP_MS:g} ms apart"
            report_paced(label, sides, connections)
    with servers(UPSTREAMS["asyncio"], 0.0, args.before) as (_, ours, floor, before):
        started = {"astrlite": ours, "floor": floor}
        if before is not None:
            started["before"] = before
        figures = asyncio.run(unpaced(started, args.reps))
    report_unpaced(figures, args.reps, before is not None)


if __name__ == "__main__":
    main()

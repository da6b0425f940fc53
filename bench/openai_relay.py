"""Issue 6: a streamed chat relayed from an OpenAI-compatible upstream through astrlite
(the ``openai`` provider, dist/astrlite.pyz), beside a client reading the same upstream
directly, in the same run.

The upstream (bench/fake_openai.py, its own process) streams TOKENS tokens, one chunk
every GAP_MS (a fast local model), then usage and ``[DONE]``. Turns alternate: one read
directly from the upstream, one through astrlite (POST /api/v1/chat, keep-alive, a new
session each), RUNS of each. Measured per turn, from the request's first byte:

- time to the first token: the first ``content`` chunk (direct) or the first ``plain``
  event (through astrlite);
- total time: to the last byte (``[DONE]``, or astrlite's ``end`` and the last chunk);
- astrlite's CPU time (utime + stime of its process) over its turns, per relayed token;
- how many connections astrlite opened to the upstream (the upstream counts them): one
  per turn means its pooled connection was not reused.

A second round streams the tokens back to back (no gap) to show the relay's own pace.
`python -m bench openai_relay`, or `python -m bench.openai_relay` (rebuild the .pyz first).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.common import Started, free_port, spawned
from bench.streams import Client, Exchange, astrlite, cpu_seconds, post

TOKENS = 200
GAP_MS = 2.0  # 500 tokens/s: faster than any edge model, so the relay's cost shows
RUNS = 20
UNPACED_RUNS = 20
WARM_RUNS = 3
CONTENT = b'"content"'
PLAIN = b'"type": "plain"'
GOAL_FIRST_MS = 2.0
GOAL_TOTAL = 0.05


@contextmanager
def upstream(gap_ms: float) -> Iterator[Started]:
    port = free_port()
    command = [sys.executable, "-m", "bench.fake_openai", str(port), str(TOKENS), str(gap_ms)]
    with spawned(command, port, "/") as started:
        yield started


def config(base_url: str) -> dict[str, object]:
    entry = {"id": "up", "type": "openai", "base_url": base_url, "model": "bench"}
    return {"provider": "up", "providers": [entry], "streaming": True}


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


@dataclass
class Round:
    direct: list[Exchange]
    relayed: list[Exchange]
    cpu_seconds: float
    connections: int  # opened to the upstream by astrlite

    def first_ms(self, exchanges: list[Exchange]) -> float:
        return statistics.median(e.to_marker for e in exchanges) * 1000

    def total_ms(self, exchanges: list[Exchange]) -> float:
        return statistics.median(e.total for e in exchanges) * 1000


def check(exchange: Exchange) -> Exchange:
    if exchange.status != 200 or not exchange.first_marker:
        raise RuntimeError(f"bad stream: status {exchange.status}, {exchange.events} events")
    return exchange


async def measure(up: tuple[str, int], ours: tuple[str, int], pid: int, runs: int) -> Round:
    direct_client = await Client.connect(*up, marker=CONTENT)
    relay_client = await Client.connect(*ours, marker=PLAIN)
    for _ in range(WARM_RUNS):
        check(await direct_client.exchange(DIRECT))
        check(await relay_client.exchange(RELAYED))
    direct, relayed = [], []
    # The whole span (astrlite idles while the direct turns run): /proc counts in ticks
    # of 10 ms, too coarse to sum per turn.
    before = cpu_seconds(pid)
    for _ in range(runs):
        direct.append(check(await direct_client.exchange(DIRECT)))
        exchange = check(await relay_client.exchange(RELAYED))
        if exchange.events < TOKENS:
            raise RuntimeError(f"relayed {exchange.events} events for {TOKENS} tokens")
        relayed.append(exchange)
    await asyncio.sleep(0.05)  # the last turn's history write
    cpu = cpu_seconds(pid) - before
    probe = await direct_client.exchange(f"GET / HTTP/1.1\r\nHost: {up[0]}\r\n\r\n".encode())
    direct_client.close()
    relay_client.close()
    # Less the start-up probe's and the direct client's own.
    return Round(direct, relayed, cpu, int(probe.body) - 2)


def run(gap_ms: float, runs: int) -> Round:
    with upstream(gap_ms) as up, astrlite(config(f"{up.url}/v1")) as ours:
        return asyncio.run(measure(up.address, ours.address, ours.process.pid, runs))


def main() -> None:
    paced = run(GAP_MS, RUNS)
    unpaced = run(0.0, UNPACED_RUNS)
    for label, result, runs in (
        (f"{TOKENS} tokens {GAP_MS:g} ms apart", paced, RUNS),
        (f"{TOKENS} tokens back to back", unpaced, UNPACED_RUNS),
    ):
        d_first, r_first = result.first_ms(result.direct), result.first_ms(result.relayed)
        d_total, r_total = result.total_ms(result.direct), result.total_ms(result.relayed)
        per_token = result.cpu_seconds / (runs * TOKENS) * 1e6
        paced_goals = result is paced
        print(
            f"{label}, p50 of {runs}: first token direct {d_first:.2f} ms, via astrlite "
            f"{r_first:.2f} ms, added {r_first - d_first:.2f} ms"
            + (f" (goal <= {GOAL_FIRST_MS:g} ms)" if paced_goals else "")
        )
        print(
            f"{label}, p50 of {runs}: total direct {d_total:.1f} ms, via astrlite "
            f"{r_total:.1f} ms, added {(r_total / d_total - 1) * 100:.1f}%"
            + (f" (goal <= {GOAL_TOTAL * 100:.0f}%)" if paced_goals else "")
        )
        print(
            f"{label}: astrlite CPU {per_token:.1f} us per relayed token "
            f"({result.cpu_seconds * 1000 / runs:.1f} ms per {TOKENS}-token turn); "
            f"upstream connections opened by astrlite: {result.connections} for "
            f"{runs + WARM_RUNS} turns"
        )


if __name__ == "__main__":
    main()

"""Issues 3 and 17: authenticated GET /api/v1/im/bots, keep-alive, 32 connections (wrk),
beside a bare uvicorn --http h11 app returning the same JSON (the floor).

Rounds alternate between the servers (the machine is shared: medians of interleaved
rounds). Each figure is req/s and the server's CPU time per request, read from /proc.
`--before PYZ` adds another build (say main's) to the same rounds."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import (
    BENCH_KEY,
    PYZ,
    Started,
    free_port,
    have_wrk,
    median,
    spawned,
    uvicorn_command,
    wrk,
)
from bench.observe import cpu_seconds

PATH = "/api/v1/im/bots"
FLOOR = "uvicorn --http h11"


@contextmanager
def _astrlite(pyz: Path) -> Iterator[Started]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        command = [sys.executable, str(pyz), "--port", str(port), "--data-dir", data_dir]
        with spawned(command, port, PATH) as started:
            yield started


@contextmanager
def _floor() -> Iterator[Started]:
    port = free_port()
    with spawned(uvicorn_command(port), port, "/") as started:
        yield started


def _measure(started: Started, seconds: int) -> tuple[float, float]:
    """(req/s, CPU microseconds per request)."""
    url = started.url + PATH
    headers = {"X-API-Key": BENCH_KEY}
    wrk(url, seconds=1, headers=headers)  # warm
    before = cpu_seconds(started.process.pid)
    load = wrk(url, seconds=seconds, headers=headers)
    cpu = cpu_seconds(started.process.pid) - before
    return load.requests_per_second, cpu / (load.requests_per_second * seconds) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench keys")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another astrlite.pyz to measure alongside")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if not have_wrk():
        print("keys: skipped (install wrk: apt-get install wrk)")
        return
    servers = {"astrlite": lambda: _astrlite(PYZ), FLOOR: _floor}
    if args.before is not None:
        before: Path = args.before
        servers["astrlite (before)"] = lambda: _astrlite(before)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, start in servers.items():
            with start() as started:
                results[name].append(_measure(started, args.seconds))
    floor_rps = median([rps for rps, _ in results[FLOOR]])
    floor_cpu = median([cpu for _, cpu in results[FLOOR]])
    for name, rounds in results.items():
        rps = median([r for r, _ in rounds])
        cpu = median([c for _, c in rounds])
        print(
            f"GET {PATH} c=32 {name}: {rps:,.0f} req/s ({rps / floor_rps:.2f}x the floor, "
            f"goal >= 1.0x), {cpu:.0f} us CPU/request ({cpu / floor_cpu:.2f}x, goal <= 1.0x)"
        )

"""Issue 16: what the operator features cost. Server CPU time per small request
(GET /api/v1/im/bots, keep-alive, one client), read from /proc: robust on a shared
machine where throughput is noise. Baseline in the same run: the access log off.
Rounds alternate between the settings; medians are compared."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

from bench.common import BENCH_KEY, PYZ, free_port, median, spawned

REQUESTS = 3000
ROUNDS = 5
SETTINGS = {
    "access log off (baseline)": ["--access-log", "0"],
    "access log on (default)": [],
    "access log, --log-format json": ["--log-format", "json"],
    "access log, --metrics": ["--metrics"],
}
REQUEST = (
    f"GET /api/v1/im/bots HTTP/1.1\r\nHost: bench\r\nX-API-Key: {BENCH_KEY}\r\n"
    "User-Agent: bench-observe\r\n\r\n"
).encode()
END = b'{"bot_ids":[]}}\n'


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send(conn: socket.socket, count: int) -> None:
    for _ in range(count):
        conn.sendall(REQUEST)
        answer = b""
        while not answer.endswith(END):
            piece = conn.recv(65536)
            if not piece:
                raise RuntimeError("the server closed the connection")
            answer += piece


def microseconds_per_request(extra: list[str]) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        command = [sys.executable, str(PYZ), "--port", str(port), "--data-dir", data_dir]
        with (
            spawned([*command, *extra], port, "/health") as started,
            socket.create_connection(("127.0.0.1", port)) as conn,
        ):
            send(conn, 300)  # warm
            before = cpu_seconds(started.process.pid)
            send(conn, REQUESTS)
            return (cpu_seconds(started.process.pid) - before) / REQUESTS * 1e6


def main() -> None:
    results: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(ROUNDS):
        for name, extra in SETTINGS.items():
            results[name].append(microseconds_per_request(extra))
    base = median(results["access log off (baseline)"])
    for name, values in results.items():
        cost = median(values)
        print(f"{name}: {cost:.0f} us CPU per request, {cost / base:.2f}x the baseline")

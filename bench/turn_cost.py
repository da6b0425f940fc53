"""`python -m bench turn_cost [--baseline REF]`: what one request costs the server, in
instructions, for this tree and a baseline (`main` by default).

Timings on a shared machine move by a third from one minute to the next; the number of
instructions a request executes does not (repeat runs agree within half a per cent). Each
server runs under valgrind's cachegrind, which counts them (user space only: system calls
and the kernel's side of the socket are not in the count). A server is started twice,
serving FEW and then MANY requests from 8 clients after a warm-up; the difference between
the two counts, over MANY - FEW, is the cost of one request without start-up and
shut-down. Measured: an echo chat turn in a new session (the path of `bench scale`'s
turns/s) and a GET /api/v1/im/bots (the bare HTTP path, for comparison).

Needs valgrind (`apt-get install valgrind`); a run takes a few minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import BENCH_KEY, ROOT, free_port, wait_for_answer
from bench.scale import BOTS, CHAT, ECHO_CONFIG, baseline_ref, export
from bench.streams import Client, connect_all, get, post, raise_file_limit

CLIENTS = 8
WARM_UP = 50
FEW, MANY = 200, 1000
READY_TIMEOUT = 300.0  # a start under valgrind takes seconds
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


def chat() -> bytes:
    return post(CHAT, {"username": "cost", "message": "hello there"})


def bots() -> bytes:
    return get(BOTS)


async def serve(port: int, request: Callable[[], bytes], count: int) -> None:
    clients = await connect_all("127.0.0.1", port, CLIENTS)
    left = count

    async def worker(client: Client) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            exchange = await client.exchange(request(), timeout=120)
            if exchange.status != 200:
                raise RuntimeError(f"the server answered {exchange.status}")

    await asyncio.gather(*(worker(client) for client in clients))
    for client in clients:
        client.close()


def instructions(root: Path, request: Callable[[], bytes], count: int) -> int:
    """Instructions a server of ``root`` executed from start to exit, serving ``count``
    requests after the warm-up."""
    with tempfile.TemporaryDirectory(prefix="astrlite-cost-") as tmp:
        data_dir, out = Path(tmp, "data"), Path(tmp, "cachegrind.out")
        data_dir.mkdir()
        (data_dir / "config.json").write_text(json.dumps(ECHO_CONFIG))
        port = free_port()
        command = [
            *("valgrind", "--tool=cachegrind", "--cache-sim=no"),
            f"--cachegrind-out-file={out}",
            *(sys.executable, "-m", "astrlite", "--port", str(port)),
            *("--data-dir", str(data_dir), "--access-log", "0", "--keepalive-timeout", "3600"),
        ]
        env = {**os.environ, "ASTRLITE_API_KEY": BENCH_KEY, "PYTHONPATH": str(root)}
        process = subprocess.Popen(
            command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            started = time.perf_counter()
            wait_for_answer(f"http://127.0.0.1:{port}{BOTS}", started, READY_TIMEOUT, process)
            asyncio.run(serve(port, request, WARM_UP))
            asyncio.run(serve(port, request, count))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(READY_TIMEOUT)
        found = _SUMMARY.search(out.read_text())
        if found is None:
            raise RuntimeError("cachegrind wrote no summary")
        return int(found.group(1))


def per_request(root: Path, request: Callable[[], bytes]) -> float:
    return (instructions(root, request, MANY) - instructions(root, request, FEW)) / (MANY - FEW)


def main() -> None:
    if shutil.which("valgrind") is None:
        print("turn_cost needs valgrind (apt-get install valgrind); skipped")
        return
    raise_file_limit(1024)
    ref = baseline_ref()
    with tempfile.TemporaryDirectory(prefix="astrlite-cost-tree-") as tmp:
        base_root = export(ref, Path(tmp))
        print("instructions per request (millions), the server's user space")
        for name, request in (("echo turn, new session", chat), ("GET /im/bots", bots)):
            base, mine = per_request(base_root, request), per_request(ROOT, request)
            print(
                f"{name}: {ref} {base / 1e6:.3f}, this tree {mine / 1e6:.3f} ({mine / base:.2f}×)"
            )

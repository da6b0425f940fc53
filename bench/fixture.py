"""Issue 8: start-to-ready and stop of astrlite.testing.serve() over 100 cycles
(goals: <= 50 ms median start, <= 20 ms median stop)."""

from __future__ import annotations

import http.client
import statistics
import time

from astrlite.testing import serve

CYCLES = 100


def main() -> None:
    starts, stops = [], []
    for _ in range(CYCLES):
        began = time.perf_counter()
        block = serve()
        server = block.__enter__()
        port = int(server.base_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/api/v1/openapi.json")  # ready means answering
        conn.getresponse().read()
        conn.close()
        ready = time.perf_counter()
        block.__exit__(None, None, None)
        stops.append(time.perf_counter() - ready)
        starts.append(ready - began)
    for name, values in (("start-to-first-answer", starts), ("stop", stops)):
        ordered = sorted(values)
        print(
            f"fixture {name}: median {statistics.median(values) * 1000:.1f} ms, "
            f"p90 {ordered[int(len(ordered) * 0.9)] * 1000:.1f} ms over {CYCLES} cycles"
        )

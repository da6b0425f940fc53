"""Issue 3: authenticated GET /api/v1/im/bots, keep-alive, 32 connections (wrk), beside
a bare uvicorn --http h11 app returning the same JSON."""

from __future__ import annotations

from bench.common import BENCH_KEY, have_wrk, server, wrk


def main() -> None:
    if not have_wrk():
        print("keys: skipped (install wrk: apt-get install wrk)")
        return
    with server("astrlite") as ours:
        wrk(ours.url + "/api/v1/im/bots", seconds=1, headers={"X-API-Key": BENCH_KEY})  # warm
        astrlite = wrk(ours.url + "/api/v1/im/bots", headers={"X-API-Key": BENCH_KEY})
    with server("uvicorn") as base:
        wrk(base.url + "/api/v1/im/bots", seconds=1)
        uvicorn = wrk(base.url + "/api/v1/im/bots")
    for name, load in (("astrlite", astrlite), ("uvicorn", uvicorn)):
        print(
            f"GET /api/v1/im/bots c=32 {name}: {load.requests_per_second:,.0f} req/s, "
            f"p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms"
        )
    ratio = astrlite.requests_per_second / uvicorn.requests_per_second
    print(f"ratio astrlite/uvicorn: {ratio:.2f}x (goal >= 1.0x)")

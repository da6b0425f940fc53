"""Issue 12: what the strict edge costs on top of h11, in process (no sockets, so the
figure is the parser's, not the machine's load). Baseline: h11 alone on the same bytes
in the same run.

- a request head: h11 parsing it, then also `check_head` (version, Host, framing);
- a 64 MiB chunked upload in 256 KiB reads of 64 KiB chunks: h11 alone, then also
  `ChunkSizes` reading the sizes from the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import h11

from astrlite.http.framing import ChunkSizes, check_head

HEAD = (
    b"POST /api/v1/chat HTTP/1.1\r\nHost: 127.0.0.1:6185\r\nUser-Agent: bench/1.0\r\n"
    b"Accept: */*\r\nX-API-Key: abk_0123456789abcdefghijklmnopqrstuvwxyz0123456\r\n"
    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
)
HEADS = 20_000
BODY_BYTES = 64 * 1024 * 1024
CHUNK = 64 * 1024
READ = 256 * 1024


def heads(check: bool) -> None:
    for _ in range(HEADS):
        connection = h11.Connection(h11.SERVER)
        connection.receive_data(HEAD)
        event = connection.next_event()
        assert isinstance(event, h11.Request)
        if check:
            assert check_head(event) is None


CHUNKED_HEAD = b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunked_body() -> list[bytes]:
    one = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
    body = one * (BODY_BYTES // CHUNK) + b"0\r\n\r\n"
    return [body[i : i + READ] for i in range(0, len(body), READ)]


def upload(reads: list[bytes], check: bool) -> None:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(CHUNKED_HEAD)
    assert isinstance(connection.next_event(), h11.Request)
    sizes = ChunkSizes()
    received = 0
    for data in reads:
        if check:
            sizes.feed(data)
        connection.receive_data(data)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage):
                break
            if isinstance(event, h11.Data):
                received += len(event.data)
    assert received == BODY_BYTES
    assert not check or sizes.declared >= BODY_BYTES


def best_of(runs: int, *works: Callable[[], None]) -> list[float]:
    """The best time of each, the works taking turns (load on the machine hits both)."""
    best = [float("inf")] * len(works)
    for _ in range(runs):
        for index, work in enumerate(works):
            started = time.perf_counter()
            work()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def main() -> None:
    alone, checked = best_of(7, lambda: heads(False), lambda: heads(True))
    print(
        f"request head, h11 alone: {alone / HEADS * 1e6:.1f} µs; with check_head: "
        f"{checked / HEADS * 1e6:.1f} µs; time ratio {checked / alone:.3f}x"
    )
    reads = chunked_body()
    alone, checked = best_of(5, lambda: upload(reads, False), lambda: upload(reads, True))
    print(
        f"64 MiB chunked body, h11 alone: {BODY_BYTES / alone / 1e6:,.0f} MB/s; with "
        f"ChunkSizes: {BODY_BYTES / checked / 1e6:,.0f} MB/s; time ratio {checked / alone:.3f}x"
    )

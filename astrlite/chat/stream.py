"""The bytes of one SSE response, handed from a turn (running in the background) to the
connection that writes them.

The buffer is bounded: a turn producing faster than its client reads waits for room
(backpressure), while a client that has gone costs the turn nothing, because a closed
stream drops what it is sent (F5). The reader writes everything buffered in one chunk,
so events produced together leave in one socket write, and sends a heartbeat comment
after each stretch of silence (F6). Nothing here can lose an event to a cancellation:
chunks stay in the buffer until the reader takes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import anyio

from astrlite.sse import HEARTBEAT, LastChunk


class EventStream:
    # A stream lives as long as its turn (1,000 held open must stay cheap): slots, a
    # list, and an anyio.Event only while someone actually waits on one.
    __slots__ = ("_chunks", "_finished", "_gone", "_max_chunks", "_readable", "_writable")

    def __init__(self, first: bytes, max_chunks: int) -> None:
        self._chunks: list[bytes] = [first]
        self._max_chunks = max_chunks
        self._finished = False
        self._gone = False
        self._readable: asyncio.Future[None] | None = None  # the reader waits on it
        self._writable: anyio.Event | None = None  # the turn waits on it

    @property
    def finished(self) -> bool:
        return self._finished

    async def send(self, data: bytes) -> None:
        """Queue bytes for the client, waiting while the buffer is full."""
        while len(self._chunks) >= self._max_chunks and not self._gone:
            self._writable = writable = anyio.Event()
            await writable.wait()
        if not self._gone:
            self._chunks.append(data)
            self._wake_reader()

    def offer(self, data: bytes) -> bool:
        """Queue bytes without waiting, for a stream nothing waits on (a resumed run's
        follower). When the buffer is full the reader is too slow: the stream is cut
        (it ends after what it holds, so the client may resume) and False returned."""
        if self._gone or self._finished:
            return False
        if len(self._chunks) >= self._max_chunks:
            self.finish()
            return False
        self._chunks.append(data)
        self._wake_reader()
        return True

    def finish(self, last: bytes = b"") -> None:
        """No more data after ``last``; the response ends once the buffer is written."""
        if last and not self._gone:
            self._chunks.append(last)
        self._finished = True
        self._wake_reader()

    async def body(self, heartbeat: float | None) -> AsyncGenerator[bytes, None]:
        """The response body; ``heartbeat`` seconds of silence (None: never) send one."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._chunks and not self._finished:
                    # A future and a loop timer, not an anyio.Event in a cancel scope: a
                    # streamed reply waits here once per token, and a held stream all the
                    # time (measured: ~30 us and ~1 KiB less per wait).
                    self._readable = readable = loop.create_future()
                    timer = (
                        None if heartbeat is None else loop.call_later(heartbeat, _wake, readable)
                    )
                    try:
                        await readable
                    finally:
                        self._readable = None
                        if timer is not None:
                            timer.cancel()
                if self._chunks:
                    # Not kept in a local: a held stream would pin its last chunk.
                    if self._finished:
                        yield LastChunk(self._take())
                        return
                    yield self._take()
                elif self._finished:
                    return
                else:
                    yield HEARTBEAT
        finally:
            self._gone = True
            self._chunks.clear()
            self._wake_writer()

    def _take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._wake_writer()
        return data

    def _wake_reader(self) -> None:
        if self._readable is not None:
            _wake(self._readable)

    def _wake_writer(self) -> None:
        if self._writable is not None:
            self._writable.set()
            self._writable = None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)

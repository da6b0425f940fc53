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

CLOCK_SLACK = 0.001  # seconds


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
        beat = None if heartbeat is None else _Heartbeat(loop, heartbeat)
        try:
            while True:
                if not self._chunks and not self._finished:
                    # A future, not an anyio.Event in a cancel scope: a streamed reply
                    # waits here once per token, and a held stream all the time
                    # (measured: ~30 us and ~1 KiB less per wait).
                    self._readable = readable = loop.create_future()
                    if beat is not None:
                        beat.waiting(readable)
                    try:
                        await readable
                    finally:
                        self._readable = None
                        if beat is not None:
                            beat.waiter = None
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
            if beat is not None:
                beat.stop()
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


class _Heartbeat:
    """Wakes a stream's reader once it has waited ``every`` seconds without a chunk.

    One loop timer per stream, moved on only when it fires: a turn's stream waits a few
    times in a few milliseconds, and a timer set and cancelled for each wait was a tenth
    of what the stream cost the loop."""

    __slots__ = ("_every", "_loop", "_since", "_timer", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self._loop = loop
        self._every = every
        self._since = 0.0  # when the current wait began
        self._timer: asyncio.TimerHandle | None = None
        self.waiter: asyncio.Future[None] | None = None  # the reader's, while it waits

    def waiting(self, waiter: asyncio.Future[None]) -> None:
        self.waiter = waiter
        self._since = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._since + self._every, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.waiter is None:
            return  # not waiting now: the next wait sets the timer again
        due = self._since + self._every
        if self._loop.time() >= due - CLOCK_SLACK:  # the loop runs timers a hair early
            _wake(self.waiter)
        else:  # this wait began after the timer was set
            self._timer = self._loop.call_at(due, self._fire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)

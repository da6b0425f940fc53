"""An event stream's heartbeat without sockets: one is sent after each stretch of
``heartbeat`` seconds in which the stream waited without a chunk, counted from the start
of that wait, never while chunks keep coming."""

from __future__ import annotations

import anyio
import pytest

from astrlite.chat.stream import EventStream
from astrlite.sse import HEARTBEAT

pytestmark = pytest.mark.anyio
EVERY = 0.2


async def timed_body(stream: EventStream) -> list[tuple[float, bytes]]:
    start = anyio.current_time()
    return [(anyio.current_time() - start, bytes(piece)) async for piece in stream.body(EVERY)]


async def test_a_heartbeat_after_each_silent_stretch_counted_from_its_last_chunk() -> None:
    stream = EventStream(b"first", 16)
    seen: list[tuple[float, bytes]] = []

    async def write() -> None:
        await anyio.sleep(EVERY * 0.6)
        await stream.send(b"a")  # the silence starts again here
        await anyio.sleep(EVERY * 1.5)  # one heartbeat in this stretch, at 1.0 of it
        await stream.send(b"b")
        stream.finish()

    async with anyio.create_task_group() as group:
        group.start_soon(write)
        seen = await timed_body(stream)
    assert [piece for _, piece in seen] == [b"first", b"a", HEARTBEAT, b"b"]
    beat = seen[2][0]
    assert EVERY * 1.6 - 0.01 <= beat < EVERY * 2.1  # not EVERY after the first wait began


async def test_no_heartbeat_while_chunks_keep_coming() -> None:
    stream = EventStream(b"", 16)

    async def write() -> None:
        for _ in range(8):
            await anyio.sleep(EVERY / 4)
            await stream.send(b"x")
        stream.finish()

    async with anyio.create_task_group() as group:
        group.start_soon(write)
        seen = await timed_body(stream)
    assert HEARTBEAT not in [piece for _, piece in seen]
    assert b"".join(piece for _, piece in seen) == b"x" * 8

"""The raw socket's readiness watch: registered with the event loop once and kept between
requests, dropped when bytes arrive that nobody asked for (no spinning on them), handed
over to anyio's own waits, and gone before the socket closes (its number is reused)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import anyio
import pytest

from astrlite.http.rawsocket import RawSocketStream

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RawSocketStream, socket.socket]]:
    ours, theirs = socket.socketpair()
    stream = RawSocketStream(ours)
    yield stream, theirs
    stream.close()
    theirs.close()


def registered(sock: socket.socket) -> bool:
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    return sock.fileno() in selector.get_map()


async def readable(stream: RawSocketStream) -> None:
    fired = anyio.Event()
    stream.on_readable(fired.set)
    with anyio.fail_after(2):
        await fired.wait()


async def test_the_watch_stays_between_requests(
    pair: tuple[RawSocketStream, socket.socket],
) -> None:
    stream, theirs = pair
    for request in (b"one", b"two", b"three"):
        theirs.send(request)
        await readable(stream)
        assert stream.try_receive(100) == request
        assert registered(stream.sock)  # not removed and added again for the next one


async def test_bytes_nobody_asked_for_stop_the_watch(
    pair: tuple[RawSocketStream, socket.socket],
) -> None:
    stream, theirs = pair
    forget = stream.on_readable(lambda: None)
    forget()  # the request was read another way; nobody waits now
    theirs.send(b"pipelined")
    for _ in range(5):
        await asyncio.sleep(0)
    assert not registered(stream.sock)  # else the loop would wake on them again and again
    await readable(stream)  # asked again: the bytes are still there
    assert stream.try_receive(100) == b"pipelined"


async def test_a_waiting_receive_and_the_watch_take_turns(
    pair: tuple[RawSocketStream, socket.socket],
) -> None:
    stream, theirs = pair
    stream.on_readable(lambda: None)()

    async def later() -> None:
        await anyio.sleep(0.05)
        theirs.send(b"late")

    async with anyio.create_task_group() as group:
        group.start_soon(later)
        with anyio.fail_after(2):
            assert await stream.receive(100) == b"late"
    theirs.send(b"next")
    await readable(stream)
    assert stream.try_receive(100) == b"next"


async def test_closing_leaves_nothing_registered_for_the_next_socket() -> None:
    first, first_peer = socket.socketpair()
    stream = RawSocketStream(first)
    stream.on_readable(lambda: None)
    number = first.fileno()
    stream.close()
    first_peer.close()
    second, second_peer = socket.socketpair()
    try:
        assert number in (second.fileno(), second_peer.fileno())  # the number is reused
        reused = second if second.fileno() == number else second_peer
        other = second_peer if reused is second else second
        stream = RawSocketStream(reused)
        other.send(b"hello")
        await readable(stream)
        assert stream.try_receive(100) == b"hello"
        stream.close()
    finally:
        second.close()
        second_peer.close()

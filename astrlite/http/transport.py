"""What a connection needs of its byte stream. The raw socket satisfies it; tests drive a
connection through an in-memory one without any socket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Transport(Protocol):
    async def receive(self, max_bytes: int) -> bytes:
        """The next bytes; b"" at end of stream. Raises one of rawsocket.GONE on a reset."""
        ...

    def try_receive(self, max_bytes: int) -> bytes | None:
        """The bytes that have arrived (b"" at end of stream), None when there are none
        yet; without waiting. Raises one of rawsocket.GONE on a reset."""
        ...

    def on_readable(self, callback: Callable[[], None]) -> Callable[[], object]:
        """Call `callback` once, on the event loop, when there is something to receive
        (or the peer has gone); returns the function that cancels this."""
        ...

    def try_send(self, data: memoryview) -> int:
        """Send what can be sent now without waiting; how many bytes went."""
        ...

    async def send_rest(self, data: memoryview) -> None:
        """Send all of `data`, waiting for room."""
        ...

    async def send_file(self, fd: int, offset: int, count: int) -> int:
        """Send up to `count` bytes of the file `fd` from `offset`, waiting for room if
        there is none; how many bytes went (0: the file ends before `offset`)."""
        ...

    def send_eof(self) -> None: ...

    def close(self) -> None: ...

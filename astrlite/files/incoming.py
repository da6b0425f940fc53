"""An upload on its way into attachments/.incoming/: hashed, measured and written off the
event loop while the loop receives the next bytes.

Pieces are gathered into batches. A batch is hashed on one worker thread and written
on another at the same time, while the loop gathers the next batch; at most one batch
is in flight, so memory stays at two batches whatever the file's size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread

from astrlite.files import sniff

# Big enough that the two thread hops per batch cost little beside hashing and writing
# it, small enough that two batches stay well inside the 16 MiB an upload may add.
BATCH_BYTES = 4 * 1024 * 1024
# writev takes at most IOV_MAX (1024 on Linux) buffers; a trickled upload arrives in
# tiny pieces, so a batch is also cut at this many.
BATCH_PIECES = 512
FILE_MODE = 0o644


class IncomingFile:
    """Write with `write`, then `finish`; `discard` at any point removes the file.

    Worker threads are started in `group`; their errors surface from the next `write`
    or from `finish`, never from the group (so they are not wrapped in an
    ExceptionGroup). The caller must let the group end before `discard`.
    """

    def __init__(self, path: Path, group: anyio.abc.TaskGroup) -> None:
        self.path = path
        self.size = 0
        self.head = b""  # the first bytes, for sniffing
        self._group = group
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._in_flight: list[anyio.Event] = []
        self._failure: Exception | None = None
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if len(self.head) < sniff.SNIFF_BYTES:
            self.head += data[: sniff.SNIFF_BYTES - len(self.head)]
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= BATCH_BYTES or len(self._pending) >= BATCH_PIECES:
            await self._submit()

    async def finish(self) -> None:
        """Write what is pending, wait for it and close the file."""
        await self._submit()
        await self._settle()
        self._close()

    def discard(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)

    async def _submit(self) -> None:
        await self._settle()
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if batch:
            self._start(self._hash, batch)
            self._start(self._write, batch)

    async def _settle(self) -> None:
        """Wait for the batch in flight; raise what went wrong with it."""
        for done in self._in_flight:
            await done.wait()
        self._in_flight.clear()
        if self._failure is not None:
            raise self._failure

    def _start(self, work: Callable[[list[bytes]], None], batch: list[bytes]) -> None:
        done = anyio.Event()
        self._in_flight.append(done)
        self._group.start_soon(self._run, work, batch, done)

    async def _run(
        self, work: Callable[[list[bytes]], None], batch: list[bytes], done: anyio.Event
    ) -> None:
        try:
            await anyio.to_thread.run_sync(work, batch)
        except Exception as error:  # raised to the writer by _settle
            self._failure = self._failure or error
        finally:
            done.set()

    def _hash(self, batch: list[bytes]) -> None:
        for piece in batch:
            self._digest.update(piece)

    def _write(self, batch: list[bytes]) -> None:
        assert self._fd is not None
        _write_all(self._fd, batch)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """writev until every piece is written (one call may write less)."""
    views = [memoryview(piece) for piece in pieces]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first:])
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]

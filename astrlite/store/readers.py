"""Reader threads for reads that walk many rows (a deep page of sessions).

A few threads, each with its own WAL reader connection, take reads from one queue, so
at most that many run at once and the rest wait their turn. The threads run at a lower
CPU priority than the event loop (Linux lets a thread have its own nice value): on a
busy box a scan yields the core to the loop, so the cheap requests beside it keep their
latency, and the scan still gets every cycle nobody else wants.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

# Five steps nicer than the process: about a third of the loop thread's CPU share when
# both want the same core.
READER_NICENESS = 5

# The work, the caller's context variables (as a thread call would carry them), where
# the answer goes.
_Read = tuple[
    Callable[[sqlite3.Connection], Any],
    contextvars.Context,
    asyncio.AbstractEventLoop,
    asyncio.Future[Any],
]


class Readers:
    def __init__(self, connections: list[sqlite3.Connection]) -> None:
        self._connections = connections
        self._queue: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def read(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """``work`` on the next free reader, in one read transaction (a snapshot)."""
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((work, contextvars.copy_context(), loop, future))
        return await future

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        for conn in self._connections:
            conn.close()

    def _start(self) -> None:
        if self._threads:
            return
        with self._lock:
            if not self._threads:
                for number, conn in enumerate(self._connections, 1):
                    thread = threading.Thread(
                        target=self._run,
                        args=(conn,),
                        name=f"astrlite-reader-{number}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)

    def _run(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(OSError, AttributeError):  # not Linux: the default priority
            thread = threading.get_native_id()
            nice = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, nice + READER_NICENESS)
        while (item := self._queue.get()) is not None:
            work, context, loop, future = item
            try:
                conn.execute("BEGIN")
                try:
                    result = context.run(work, conn)
                finally:
                    conn.execute("COMMIT")
            except BaseException as error:  # handed to the caller, never kills the thread
                _settle(loop, future, None, error)
            else:
                _settle(loop, future, result, None)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():  # the caller was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
        loop.call_soon_threadsafe(settle)

"""The writer thread: group commit.

Every write waiting when the writer becomes free is committed in one transaction, each
inside its own savepoint: the batch pays for one commit, every caller still gets its own
result or its own exception, and a write that fails is rolled back alone. If the
transaction itself is lost (sqlite rolls it back on some I/O errors, or the commit
fails), the writes that did not fail are retried, each in a transaction of its own, so
one bad write never takes the others with it.

Results are handed back to the event loop in one callback per batch. astrlite runs on
anyio's asyncio backend, so that is ``loop.call_soon_threadsafe`` on asyncio futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from astrlite.store.errors import StoreError

# A batch stops taking more writes at this many, so one transaction (and the wait of the
# write that arrives just after it starts) stays a few milliseconds long.
MAX_BATCH = 256


@dataclass(slots=True)
class Job:
    work: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    # The caller's context variables (the clock and id source, sources.py), as a
    # thread call would carry them.
    context: contextvars.Context
    result: Any = None
    error: BaseException | None = field(default=None)


class Writer:
    """One thread, one connection; ``submit`` from an event loop.

    Writes submitted during one turn of the event loop reach the thread together, in
    one queue item: a single wake-up of the writer thread per loop turn, however many
    chat turns wrote in it (each wake-up is a thread switch, dear on a busy box).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()  # guards _pending and the thread's start
        self._pending: list[Job] = []

    def submit(self, work: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        if self._closed:
            raise StoreError("the database is closed")
        loop = asyncio.get_running_loop()
        job = Job(work, loop, loop.create_future(), contextvars.copy_context())
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="astrlite-writer", daemon=True
                )
                self._thread.start()
            self._pending.append(job)
            first = len(self._pending) == 1
        if first:
            loop.call_soon(self._flush)
        return job.future

    def _flush(self) -> None:
        with self._lock:
            jobs, self._pending = self._pending, []
        if jobs:
            self._queue.put(jobs)

    def close(self) -> None:
        """Finish the writes already submitted, then stop the thread."""
        self._closed = True
        self._flush()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = list(first)
            stopping = False
            while len(batch) < MAX_BATCH:
                try:
                    jobs = self._queue.get_nowait()
                except queue.Empty:
                    break
                if jobs is None:
                    stopping = True
                    break
                batch += jobs
            try:
                commit_batch(self._conn, batch)
            except BaseException as error:  # sqlite itself failing: fail the batch, go on
                _abandon(self._conn, batch, error)
            _hand_back(batch)
            if stopping:
                return


def commit_batch(conn: sqlite3.Connection, batch: list[Job]) -> None:
    """Run every job of ``batch`` in one transaction, one savepoint each."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        for job in batch:
            job.error = error
        return
    for job in batch:
        conn.execute("SAVEPOINT write")
        try:
            job.result = job.context.run(job.work, conn)
        except BaseException as error:  # handed to its caller, never kills the thread
            job.error = error
            if not conn.in_transaction:  # sqlite gave up the whole transaction
                _one_by_one(conn, [j for j in batch if j is not job and j.error is None])
                return
            conn.execute("ROLLBACK TO write")
        conn.execute("RELEASE write")
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        _one_by_one(conn, [job for job in batch if job.error is None])


def _one_by_one(conn: sqlite3.Connection, jobs: list[Job]) -> None:
    for job in jobs:
        job.result = job.error = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            job.result = job.context.run(job.work, conn)
            conn.execute("COMMIT")
        except BaseException as error:
            job.result, job.error = None, error
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def _abandon(conn: sqlite3.Connection, batch: list[Job], error: BaseException) -> None:
    for job in batch:
        job.result, job.error = None, error
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _hand_back(batch: list[Job]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
    for job in batch:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, jobs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
            loop.call_soon_threadsafe(_settle, jobs)


def _settle(jobs: list[Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)

"""The writer: group commit, on the event loop when it can, on a thread when it must wait.

Every write waiting when the writer becomes free is committed in one transaction, each
inside its own savepoint: the batch pays for one commit, every caller still gets its own
result or its own exception, and a write that fails is rolled back alone. If the
transaction itself is lost (sqlite rolls it back on some I/O errors, or the commit
fails), the writes that did not fail are retried, each in a transaction of its own, so
one bad write never takes the others with it.

Small writes (a chat turn's rows, ``submit(small=True)``) submitted during one turn of
the event loop are committed together at the end of it, on the loop, through a
connection of their own that never waits. On a busy server this is every commit; each
thread hop costs a wake-up, and the thread contends with the loop for the GIL while it
runs Python between sqlite calls. If the write lock is taken (a checkpoint or a batch on
the thread, another process), they stay queued on the loop, which tries again every
``LOCK_RETRY_SECONDS``; only a lock held longer than ``LOCK_PATIENCE_SECONDS`` sends
them to the thread, which waits out its busy timeout. Handing them to the thread at once
fed itself: the thread then held the lock for them, so the next loop turn's writes found
it taken too, and a RESTART checkpoint's few milliseconds became half a second or more
of every write taking the slow road (at 32 concurrent chat turns, turns ran 1.5x slower
meanwhile). Small writes run without a savepoint each unless one of them fails: then
the batch is rolled back and run again with savepoints, so a small write must be
database statements only (it may run twice, and is committed once). Nothing on the loop
fsyncs: its connection never checkpoints, the thread does that (every
``CHECKPOINT_EVERY`` small writes, see RESTART_LOG_PAGES). Large writes (deletes, the
sweeper) always go to the thread, and so do small writes whose transaction was lost
(they are retried there).

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
# The thread checkpoints the log after this many small writes (a few pages each): about
# sqlite's own automatic checkpoint at 1,000 pages.
CHECKPOINT_EVERY = 256
# Those checkpoints are PASSIVE: they copy the log into the database without holding up
# the writes. Under steady writes the log then never starts over, so once it holds this
# many pages a RESTART follows, which holds writes off until it is done and makes the
# next write start the log over. Measured at 32 concurrent chat turns: a RESTART every
# time held the turns' writes 5-12 ms three times a second (p99 +2 ms, turns/s -3%).
RESTART_LOG_PAGES = 4096  # 16 MiB of 4 KiB pages
# A PASSIVE checkpoint that leaves frames behind does not sync the database file, so
# the RESTART syncs every page the PASSIVE ones copied since the last: on a 600 MiB
# database, pages all over the file, 25-40 ms with the writes held off. ``flush_file``
# syncs them first, without holding any lock, and the RESTART's own sync finds little
# left: 2-5 ms (at 32 concurrent chat turns on the filled database, docs/scale.md). It
# does so only for a large file (db.FLUSH_FIRST_BYTES): the log keeps growing meanwhile.
_CHECKPOINT = "checkpoint"
LOCK_RETRY_SECONDS = 0.001
LOCK_PATIENCE_SECONDS = 0.25


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
    """One thread with its connection, and (``loop_conn``) a connection for small writes
    on the event loop, opened with ``busy_timeout = 0`` and ``wal_autocheckpoint = 0``;
    ``submit`` from an event loop.

    Writes submitted during one turn of the event loop reach the thread together, in
    one queue item: a single wake-up of the writer thread per loop turn, however many
    chat turns wrote in it (each wake-up is a thread switch, dear on a busy box).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop_conn: sqlite3.Connection | None = None,
        flush_file: Callable[[], bool] | None = None,
    ) -> None:
        self._conn = conn
        self._loop_conn = loop_conn
        self._flush_file = flush_file
        self._queue: queue.SimpleQueue[list[Job] | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()  # guards _pending and the thread's start
        self._pending: list[Job] = []
        self._small: list[Job] = []  # only touched on the loop
        self._small_since_checkpoint = 0
        self._locked_since: float | None = None  # loop time the lock was first found taken
        # Set by the thread while it runs a RESTART: the loop then leaves the lock to it.
        # Its busy handler backs off up to 100 ms between tries, and a loop committing
        # back to back took the lock first, try after try, while the log grew.
        self._restarting = False
        self._retry: asyncio.TimerHandle | None = None

    def submit(
        self, work: Callable[[sqlite3.Connection], Any], *, small: bool = False
    ) -> asyncio.Future[Any]:
        if self._closed:
            raise StoreError("the database is closed")
        loop = asyncio.get_running_loop()
        job = Job(work, loop, loop.create_future(), contextvars.copy_context())
        if small and self._loop_conn is not None:
            self._small.append(job)
            if len(self._small) == 1 and self._retry is None:
                loop.call_soon(self._commit_small)
            return job.future
        self._to_thread([job])
        return job.future

    def _commit_small(self) -> None:
        self._retry = None
        jobs, self._small = self._small, []
        conn = self._loop_conn
        if not jobs or conn is None:  # close() handed them to the thread meanwhile
            return
        if self._restarting:
            self._wait_for_lock(jobs)
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # the write lock is taken
            self._wait_for_lock(jobs)
            return
        self._locked_since = None
        try:
            retry = commit_pure_batch(conn, jobs)
            if retry is None:  # one failed: again, one savepoint each, so it fails alone
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    self._to_thread(jobs)
                    return
                retry = commit_batch(conn, jobs)
        except BaseException as error:  # sqlite itself failing: fail the batch, go on
            _abandon(conn, jobs, error)
            retry = []
        if retry:  # their transaction was lost: again, on the thread
            again = {id(job) for job in retry}
            for job in retry:
                job.result = job.error = None
            self._to_thread(retry)
            jobs = [job for job in jobs if id(job) not in again]
        _settle(jobs)
        self._small_since_checkpoint += len(jobs)
        if self._small_since_checkpoint >= CHECKPOINT_EVERY:
            self._small_since_checkpoint = 0
            self._start_thread()
            self._queue.put(_CHECKPOINT)

    def _wait_for_lock(self, jobs: list[Job]) -> None:
        """Keep ``jobs`` queued and try again soon; after LOCK_PATIENCE_SECONDS of
        trying, hand them to the thread."""
        loop = jobs[0].loop
        now = loop.time()
        if self._locked_since is None:
            self._locked_since = now
        elif now - self._locked_since >= LOCK_PATIENCE_SECONDS:
            self._locked_since = None
            self._to_thread(jobs)
            return
        self._small = jobs  # _commit_small took them all: nothing else is queued
        self._retry = loop.call_later(LOCK_RETRY_SECONDS, self._commit_small)

    def _to_thread(self, jobs: list[Job]) -> None:
        loop = jobs[0].loop
        with self._lock:
            self._pending += jobs
            first = len(self._pending) == len(jobs)
        if first:
            loop.call_soon(self._flush)

    def _start_thread(self) -> None:
        with self._lock:
            self._start_thread_locked()

    def _start_thread_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="astrlite-writer", daemon=True)
            self._thread.start()

    def _flush(self) -> None:
        with self._lock:
            jobs, self._pending = self._pending, []
            if jobs:
                self._start_thread_locked()
        if jobs:
            self._queue.put(jobs)

    def close(self) -> None:
        """Finish the writes already submitted, then stop the thread."""
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        small, self._small = self._small, []
        with self._lock:
            self._pending += small
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
            if isinstance(first, str):
                with contextlib.suppress(sqlite3.Error):  # the next one will do
                    _, log_pages, _ = self._conn.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                    if log_pages > RESTART_LOG_PAGES:
                        self._restart_log()
                continue
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
                if isinstance(jobs, list):  # not a checkpoint: the next one will do
                    batch += jobs
            try:
                _one_by_one(self._conn, commit_batch(self._conn, batch, begin=True))
            except BaseException as error:  # sqlite itself failing: fail the batch, go on
                _abandon(self._conn, batch, error)
            _hand_back(batch)
            if stopping:
                return

    def _restart_log(self) -> None:
        """A RESTART checkpoint, after syncing the database file twice without a lock:
        the second time for the pages a PASSIVE checkpoint copied while the first ran."""
        if self._flush_file is not None and self._flush_file():
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._flush_file()
        self._restarting = True
        try:
            self._conn.execute("PRAGMA wal_checkpoint(RESTART)")
        finally:
            self._restarting = False


def commit_batch(conn: sqlite3.Connection, batch: list[Job], *, begin: bool = False) -> list[Job]:
    """Run every job of ``batch`` in one transaction (``begin``: start it; otherwise it
    is open), one savepoint each. Returns the jobs to retry one by one, their
    transaction lost."""
    if begin:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            for job in batch:
                job.error = error
            return []
    for job in batch:
        conn.execute("SAVEPOINT write")
        try:
            job.result = job.context.run(job.work, conn)
        except BaseException as error:  # handed to its caller, never kills the thread
            job.error = error
            if not conn.in_transaction:  # sqlite gave up the whole transaction
                return [j for j in batch if j is not job and j.error is None]
            conn.execute("ROLLBACK TO write")
        conn.execute("RELEASE write")
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [job for job in batch if job.error is None]
    return []


def commit_pure_batch(conn: sqlite3.Connection, batch: list[Job]) -> list[Job] | None:
    """Run every job of ``batch`` in the open transaction without savepoints, and commit:
    two statements fewer per job than `commit_batch`, for small writes, which may run
    twice (writer.py). Returns the jobs to retry one by one (their transaction lost at
    the commit); None when a job failed: then nothing is kept, and `commit_batch` must
    run them all again."""
    for job in batch:
        try:
            job.result = job.context.run(job.work, conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for ran in batch:
                ran.result = None
            return None
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return list(batch)
    return []


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

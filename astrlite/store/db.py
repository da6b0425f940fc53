"""The sqlite database: WAL, migrations, one writer thread, a pool of readers.

Point reads (a few index lookups, well under a tenth of a millisecond) run on the event
loop through ``reader``. Reads that walk many rows (a deep page of sessions) go through
``read``: a few reader threads with their own WAL connections, at most
``MAX_HEAVY_READS`` at once and at a lower CPU priority than the loop, so they queue
rather than take every core from the writer and the loop. Every write goes through
``write``, which commits all the writes waiting for it in one transaction: on the loop
for a chat turn's small writes, else on the writer thread (see writer.py). Durability:
see docs/scale.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio

from astrlite.store.errors import StoreError
from astrlite.store.lock import DirectoryLock
from astrlite.store.readers import Readers
from astrlite.store.schema import MIGRATIONS
from astrlite.store.writer import Writer

__all__ = ["DB_NAME", "Database", "StoreError", "administer", "in_transaction", "migrate"]

T = TypeVar("T")
DB_NAME = "astrlite.db"
BUSY_TIMEOUT_MS = 5000  # another process (astrlite keys ...) may hold the write lock briefly
# Scans get every core but one, which stays with the event loop and the writer: more
# concurrent scans would only take CPU time from them (on a two-core box: one scan).
MAX_HEAVY_READS = max(1, (os.cpu_count() or 2) - 1)
# A database file at least this large is synced before a RESTART checkpoint (writer.py).
FLUSH_FIRST_BYTES = 64 * 2**20


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def flush(fd: int) -> bool:
    """Write a large file's changed pages to disk; True when done. A small file's few
    pages are quick for the checkpoint to sync itself, while the log grows meanwhile;
    and where a read-only descriptor cannot be synced, the checkpoint does it too."""
    try:
        if os.fstat(fd).st_size < FLUSH_FIRST_BYTES:
            return False
        getattr(os, "fdatasync", os.fsync)(fd)
    except OSError:
        return False
    return True


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script, trigger bodies (with their own ``;``) whole."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        raise StoreError(f"incomplete statement in a migration: {pending.strip()[:60]}")


def _version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(conn: sqlite3.Connection, migrations: tuple[str, ...] | None = None) -> int:
    """Bring the schema up to date in place; refuse a database from a newer astrlite."""
    migrations = MIGRATIONS if migrations is None else migrations
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _version(conn)
        if current > len(migrations):
            raise StoreError(
                f"the database was written by a newer astrlite (schema version {current}; "
                f"this astrlite knows up to {len(migrations)}): upgrade astrlite or use "
                "another --data-dir"
            )
        for script in migrations[current:]:
            for statement in statements(script):
                conn.execute(statement)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(migrations),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(migrations)


def open_connection(data_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database; StoreError says what is wrong."""
    path = data_dir / DB_NAME
    try:
        conn = _connect(path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
        return conn
    except sqlite3.DatabaseError as error:
        raise StoreError(f"cannot use {path}: {error}") from None


def in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` in one write transaction: committed if it returns, rolled back if not."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def administer(data_dir: Path, work: Callable[[sqlite3.Connection], T]) -> T:
    """Work on the database from outside the server (`astrlite keys`, test fixtures):
    a connection of its own, one transaction. A running server sees it at once."""
    conn = open_connection(data_dir)
    try:
        return in_transaction(conn, work)
    finally:
        conn.close()


class Database:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_NAME
        self._lock = DirectoryLock.for_server(data_dir)
        try:
            self._writer_conn = open_connection(data_dir)
        except BaseException:
            self._lock.release()
            raise
        self._loop_writer_conn = _connect(self.path)
        for pragma in ("synchronous = NORMAL", "busy_timeout = 0", "wal_autocheckpoint = 0"):
            self._loop_writer_conn.execute(f"PRAGMA {pragma}")
        # Only for flushing the file ahead of a RESTART checkpoint (writer.py). Closed
        # after every connection: closing a descriptor of a file drops the process's
        # POSIX locks on it, sqlite's among them.
        self._file = os.open(self.path, os.O_RDONLY)
        self._writer = Writer(
            self._writer_conn, self._loop_writer_conn, flush_file=partial(flush, self._file)
        )
        self.reader = _connect(self.path)
        self._readers = Readers([_connect(self.path) for _ in range(MAX_HEAVY_READS)])

    def data_version(self) -> int:
        """Changes whenever another connection (our writer, another process) commits."""
        return int(self.reader.execute("PRAGMA data_version").fetchone()[0])

    async def write(self, work: Callable[[sqlite3.Connection], T], *, small: bool = False) -> T:
        """Run ``work`` inside the writer's next transaction (its own savepoint); its
        result or its exception comes back. The write completes even if the caller is
        cancelled meanwhile, and the caller waits for it then (as a thread call would),
        unless the write is ``small``: a few rows, committed on the event loop with the
        other small writes of this loop turn (on the writer thread if the write lock
        stays taken, writer.py). Its ``work`` may run twice (only one run is
        committed), so it must be database statements only; a cancelled caller stops
        waiting at once, while the write still commits with its group. Chat turns make
        these: a turn's stop never cancels it while it saves (runner._Control), and a
        shielding scope would cost about as much as the write's own Python."""
        future = self._writer.submit(work, small=small)
        if small:
            small_result: T = await future
            return small_result
        with anyio.CancelScope(shield=True):
            result: T = await future
        return result

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on a reader thread, in one read transaction (a consistent
        snapshot); at most MAX_HEAVY_READS at once, the rest queue (readers.py)."""
        result: T = await self._readers.read(work)
        return result

    def writer_connection(self) -> sqlite3.Connection:
        """The writer, for start-up work done before the event loop runs."""
        return self._writer_conn

    def size(self) -> int:
        """Bytes on disk: the database file and its write-ahead log."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):  # no WAL file yet
                total += path.stat().st_size
        return total

    def close(self) -> None:
        self._writer.close()
        self._readers.close()
        for conn in (self.reader, self._loop_writer_conn, self._writer_conn):
            conn.close()
        os.close(self._file)
        self._lock.release()

"""The sqlite database: WAL, migrations, one writer off the event loop.

Reads are short indexed queries run on the calling thread (the event loop) through a
read connection; every write goes through one writer connection on a worker thread,
one at a time, so the loop never waits on a lock or an fsync.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from astrlite.store.schema import MIGRATIONS

T = TypeVar("T")
DB_NAME = "astrlite.db"
BUSY_TIMEOUT_MS = 5000  # another process (astrlite keys ...) may hold the write lock briefly


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


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
            for statement in script.split(";"):
                if statement.strip():
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
        self._writer = open_connection(data_dir)
        self.reader = _connect(self.path)
        self._write_lock = anyio.CapacityLimiter(1)

    def data_version(self) -> int:
        """Changes whenever another connection (our writer, another process) commits."""
        return int(self.reader.execute("PRAGMA data_version").fetchone()[0])

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one transaction on the writer connection, off the event loop."""
        return await anyio.to_thread.run_sync(self._in_transaction, work, limiter=self._write_lock)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return in_transaction(self._writer, work)

    def writer_connection(self) -> sqlite3.Connection:
        """The writer, for start-up work done before the event loop runs."""
        return self._writer

    def size(self) -> int:
        """Bytes on disk: the database file and its write-ahead log."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):  # no WAL file yet
                total += path.stat().st_size
        return total

    def close(self) -> None:
        self.reader.close()
        self._writer.close()

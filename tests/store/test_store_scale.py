"""The store at scale (issue 14): group commit, per-creator counts, pages read on the
loop and on the reader pool, the scale migration. A real database in tmp_path."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from astrlite import sources
from astrlite.store import db as store_db
from astrlite.store import writer
from astrlite.store.chat import PAGE_ON_LOOP_ENTRIES, ChatStore, UserMessage
from astrlite.store.db import DB_NAME, Database, migrate, statements
from astrlite.store.readers import READER_NICENESS
from astrlite.store.schema import MIGRATIONS
from astrlite.store.sessions import SessionStore
from astrlite.store.sweeper import Limits, Sweeper, Swept

pytestmark = pytest.mark.anyio


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path)
    try:
        yield database
    finally:
        database.close()


def user(text: str = "hi") -> UserMessage:
    return UserMessage("key:alice", "alice", ({"type": "plain", "text": text},), text)


def commits(db: Database) -> list[int]:
    """A list that grows by one for every COMMIT the writer runs."""
    seen: list[int] = []
    db.writer_connection().set_trace_callback(
        lambda sql: seen.append(1) if sql.strip().upper() == "COMMIT" else None
    )
    return seen


def make_table(db: Database) -> None:
    db.writer_connection().execute("CREATE TABLE t (v INTEGER UNIQUE)")


# -- group commit ------------------------------------------------------------------------


async def test_waiting_writes_share_one_commit_and_fail_alone(db: Database) -> None:
    make_table(db)
    gate = threading.Event()
    seen = commits(db)

    def first(conn: sqlite3.Connection) -> int:
        gate.wait(5)  # holds the writer while the others queue up
        return int(conn.execute("INSERT INTO t VALUES (-1)").lastrowid or 0)

    def insert(value: int) -> int:
        def work(conn: sqlite3.Connection) -> int:
            row_id = int(conn.execute("INSERT INTO t VALUES (?)", (value,)).lastrowid or 0)
            if value == 13:
                raise LookupError("thirteen is unlucky")  # after its insert: rolled back
            return row_id

        return work  # type: ignore[return-value]

    results: dict[int, object] = {}

    async def call(value: int) -> None:
        try:
            results[value] = await db.write(insert(value))  # type: ignore[arg-type]
        except Exception as error:
            results[value] = error

    async with anyio.create_task_group() as group:
        group.start_soon(db.write, first)
        await anyio.sleep(0.05)
        for value in range(30):
            group.start_soon(call, value)
        await anyio.sleep(0.05)
        gate.set()
    failed = results.pop(13)
    assert isinstance(failed, LookupError) and str(failed) == "thirteen is unlucky"
    stored = dict(db.reader.execute("SELECT v, rowid FROM t").fetchall())
    assert set(stored) == {-1, *results}  # 13 rolled back, every other write kept
    assert all(results[value] == stored[value] for value in results)  # own row ids
    assert len(seen) == 2  # the first write alone, then the 29 others together


async def test_a_constraint_failure_loses_nothing_else(db: Database) -> None:
    make_table(db)
    db.writer_connection().execute("INSERT INTO t VALUES (7)")

    async def put(value: int) -> object:
        try:
            return await db.write(lambda conn: conn.execute("INSERT INTO t VALUES (?)", (value,)))
        except sqlite3.IntegrityError as error:
            return error

    outcomes = [None] * 10

    async def run(index: int) -> None:
        outcomes[index] = await put(index + 3)  # type: ignore[call-overload]

    async with anyio.create_task_group() as group:
        for index in range(10):
            group.start_soon(run, index)
    assert [type(o) for o in outcomes].count(sqlite3.IntegrityError) == 1  # the second 7
    values = {row[0] for row in db.reader.execute("SELECT v FROM t")}
    assert values == set(range(3, 13))


async def test_a_write_that_ends_the_transaction_does_not_take_the_others(
    db: Database,
) -> None:
    make_table(db)
    gate = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        gate.wait(5)

    def rogue(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (99)")
        conn.execute("ROLLBACK")  # as sqlite does itself on some I/O errors
        raise OSError("disk went away")

    errors: list[BaseException] = []

    async def call(work: object) -> None:
        try:
            await db.write(work)  # type: ignore[arg-type]
        except OSError as error:
            errors.append(error)

    async with anyio.create_task_group() as group:
        group.start_soon(db.write, hold)
        await anyio.sleep(0.05)
        group.start_soon(call, lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
        await anyio.sleep(0.01)
        group.start_soon(call, rogue)
        await anyio.sleep(0.01)
        group.start_soon(call, lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
        await anyio.sleep(0.05)
        gate.set()
    assert [str(e) for e in errors] == ["disk went away"]
    assert {row[0] for row in db.reader.execute("SELECT v FROM t")} == {1, 2}


async def test_a_failed_commit_retries_each_write_alone(db: Database) -> None:
    """A deferred foreign key fails only at COMMIT: the batch is retried one write per
    transaction, so only the guilty write fails."""
    conn = db.writer_connection()
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE child (id INTEGER REFERENCES parent DEFERRABLE INITIALLY DEFERRED)")
    gate = threading.Event()
    outcomes: dict[int, object] = {}

    async def call(value: int) -> None:
        table = "child" if value == 5 else "parent"
        try:
            outcomes[value] = await db.write(
                lambda c: c.execute(f"INSERT INTO {table} VALUES (?)", (value + 100,)).lastrowid
            )
        except sqlite3.IntegrityError as error:
            outcomes[value] = error

    async with anyio.create_task_group() as group:
        group.start_soon(db.write, lambda c: gate.wait(5))
        await anyio.sleep(0.05)
        for value in range(10):
            group.start_soon(call, value)
        await anyio.sleep(0.05)
        gate.set()
    assert isinstance(outcomes.pop(5), sqlite3.IntegrityError)
    assert outcomes == {value: value + 100 for value in outcomes}
    assert db.reader.execute("SELECT COUNT(*) FROM child").fetchone()[0] == 0
    assert db.reader.execute("SELECT COUNT(*) FROM parent").fetchone()[0] == 9


async def test_a_cancelled_caller_still_gets_its_write_done(db: Database) -> None:
    make_table(db)
    gate = threading.Event()
    timer = threading.Timer(0.1, gate.set)
    timer.start()

    def work(conn: sqlite3.Connection) -> None:
        gate.wait(5)
        conn.execute("INSERT INTO t VALUES (1)")

    with anyio.move_on_after(0.01) as scope:
        await db.write(work)
    timer.join()
    assert scope.cancel_called
    assert [tuple(row) for row in db.reader.execute("SELECT v FROM t")] == [(1,)]


async def test_a_cancelled_caller_of_a_small_write_stops_waiting_and_it_commits(
    db: Database,
) -> None:
    make_table(db)
    with anyio.CancelScope() as scope:
        scope.cancel()  # the caller is cancelled at its first wait, the write's
        await db.write(lambda conn: conn.execute("INSERT INTO t VALUES (7)"), small=True)
    assert scope.cancel_called
    await anyio.sleep(0.05)  # the group commits at the end of the loop turn
    assert [tuple(row) for row in db.reader.execute("SELECT v FROM t")] == [(7,)]


# -- small writes on the loop -----------------------------------------------------------


def inserting(
    unlucky: int | None, seen: list[tuple[int, bool]], statements_run: list[str]
) -> Callable[[int], Callable[[sqlite3.Connection], int]]:
    """Writes of one row each; the ``unlucky`` one fails after its insert."""

    def insert(value: int) -> Callable[[sqlite3.Connection], int]:
        def work(conn: sqlite3.Connection) -> int:
            if value == 0:  # the first of the group: watch what its connection runs
                conn.set_trace_callback(statements_run.append)
            seen.append((threading.get_ident(), conn.in_transaction))
            row_id = int(conn.execute("INSERT INTO t VALUES (?)", (value,)).lastrowid or 0)
            if value == unlucky:
                raise LookupError("unlucky")  # after its insert: rolled back
            return row_id

        return work

    return insert


async def small_writes(db: Database, insert: Callable[[int], Any], count: int) -> dict[int, object]:
    results: dict[int, object] = {}

    async def call(value: int) -> None:
        try:
            results[value] = await db.write(insert(value), small=True)
        except LookupError as error:
            results[value] = error

    async with anyio.create_task_group() as group:
        for value in range(count):
            group.start_soon(call, value)
    return results


async def test_small_writes_of_one_loop_turn_share_one_commit_on_the_loop(db: Database) -> None:
    make_table(db)
    seen: list[tuple[int, bool]] = []  # (thread, in a transaction) of each write
    statements_run: list[str] = []
    results = await small_writes(db, inserting(None, seen, statements_run), 20)
    stored = dict(db.reader.execute("SELECT v, rowid FROM t").fetchall())
    assert results == stored  # each its own row id
    assert seen == [(threading.get_ident(), True)] * 20  # on the loop, in a transaction
    statements = [sql for sql in statements_run if not sql.startswith("INSERT")]
    assert statements == ["COMMIT"]  # one commit, no savepoint per write


async def test_a_small_write_that_fails_fails_alone(db: Database) -> None:
    make_table(db)
    seen: list[tuple[int, bool]] = []
    statements_run: list[str] = []
    results = await small_writes(db, inserting(13, seen, statements_run), 20)
    assert isinstance(results.pop(13), LookupError)
    stored = dict(db.reader.execute("SELECT v, rowid FROM t").fetchall())
    assert results == stored and len(stored) == 19  # own row ids, each row once, 13 gone
    # The group ran without savepoints up to the failure, was rolled back, then ran
    # again with a savepoint each, on the loop, in one transaction.
    assert seen == [(threading.get_ident(), True)] * (14 + 20)
    assert statements_run.count("COMMIT") == 1
    assert statements_run.count("ROLLBACK TO write") == 1


def inserting_one(value: int, threads: list[int]) -> Callable[[sqlite3.Connection], int]:
    """A write of one row that notes the thread it ran on."""

    def work(conn: sqlite3.Connection) -> int:
        threads.append(threading.get_ident())
        return int(conn.execute("INSERT INTO t VALUES (?)", (value,)).lastrowid or 0)

    return work


@contextmanager
def lock_taken(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holds the write lock, as `astrlite keys` in another process
    would, until it commits."""
    other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.close()


def rows_in_t(db: Database) -> int:
    return int(db.reader.execute("SELECT COUNT(*) FROM t").fetchone()[0])


async def test_small_writes_wait_on_the_loop_while_another_writer_holds_the_lock(
    db: Database, tmp_path: Path
) -> None:
    """The loop never waits for the lock, and commits the write itself once it is free."""
    make_table(db)
    threads: list[int] = []
    with lock_taken(tmp_path) as other:
        async with anyio.create_task_group() as group:
            group.start_soon(partial(db.write, inserting_one(1, threads), small=True))
            ticks = 0
            with anyio.fail_after(2):
                while ticks < 10:  # the loop keeps running meanwhile
                    await anyio.sleep(0.005)
                    ticks += 1
            assert rows_in_t(db) == 0
            other.execute("COMMIT")
    assert rows_in_t(db) == 1
    assert threads[-1] == threading.get_ident()  # committed on the loop after all


async def test_small_writes_go_to_the_thread_when_the_lock_stays_taken(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past LOCK_PATIENCE_SECONDS the thread takes them, and waits out its busy timeout."""
    monkeypatch.setattr(writer, "LOCK_PATIENCE_SECONDS", 0.02)
    make_table(db)
    threads: list[int] = []
    with lock_taken(tmp_path) as other:
        async with anyio.create_task_group() as group:
            group.start_soon(partial(db.write, inserting_one(1, threads), small=True))
            await anyio.sleep(0.1)
            other.execute("COMMIT")
    assert rows_in_t(db) == 1
    assert threads[-1] != threading.get_ident()  # done by the writer thread


async def test_small_writes_leave_the_lock_to_a_restart_checkpoint(db: Database) -> None:
    """While the thread runs a RESTART the loop does not take the lock: back-to-back loop
    commits won it try after try from the RESTART's busy handler, and the log grew."""
    make_table(db)
    threads: list[int] = []
    writer_ = db._writer  # the state under test
    writer_._restarting = True
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(partial(db.write, inserting_one(1, threads), small=True))
            await anyio.sleep(0.02)
            assert rows_in_t(db) == 0  # waiting, though the lock is free
            writer_._restarting = False
    finally:
        writer_._restarting = False
    assert rows_in_t(db) == 1
    assert threads == [threading.get_ident()]


async def test_small_writes_do_not_pile_onto_a_thread_that_holds_the_lock(db: Database) -> None:
    """While the thread commits a slow write, the small writes of the loop turns meanwhile
    wait for the loop's next try. Handed to the thread, they kept it holding the lock
    for the next loop turn's writes, and so on: every write took the slow road."""
    make_table(db)
    threads: list[int] = []

    def slow(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (0)")
        time.sleep(0.05)  # holds the write lock

    async with anyio.create_task_group() as group:
        group.start_soon(db.write, slow)
        await anyio.sleep(0.01)  # the thread has the lock now
        for value in range(1, 6):
            group.start_soon(partial(db.write, inserting_one(value, threads), small=True))
            await anyio.sleep(0.005)  # a write in each of several loop turns
    assert rows_in_t(db) == 6
    assert threads == [threading.get_ident()] * 5  # all committed on the loop


async def test_small_writes_waiting_at_close_are_committed_by_the_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path)
    make_table(db)
    outcome: list[object] = []

    async def write() -> None:
        outcome.append(
            await db.write(lambda conn: conn.execute("INSERT INTO t VALUES (5)"), small=True)
        )

    async with anyio.create_task_group() as group:
        group.start_soon(write)
        await anyio.sleep(0)  # the write is submitted; its loop-turn commit not yet run
        db.close()
    assert len(outcome) == 1
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("SELECT v FROM t").fetchall() == [(5,)]
    conn.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_small_writes_waiting_for_the_lock_at_close_are_committed_by_the_thread(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path)
    make_table(db)
    threads: list[int] = []
    with lock_taken(tmp_path) as other:
        async with anyio.create_task_group() as group:
            group.start_soon(partial(db.write, inserting_one(5, threads), small=True))
            await anyio.sleep(0.01)  # the loop found the lock taken, and waits to try again
            other.execute("COMMIT")
            db.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("SELECT v FROM t").fetchall() == [(5,)]
    conn.close()
    assert threads and threads[-1] != threading.get_ident()


async def test_the_log_is_checkpointed_while_small_writes_commit_on_the_loop(
    db: Database, tmp_path: Path
) -> None:
    """The loop's connection never checkpoints (no fsync on the loop): the thread does,
    so the write-ahead log stays bounded (it starts over once past RESTART_LOG_PAGES).
    Without it, 6,000 commits of a row and an index page each would grow it past 40 MiB."""
    db.writer_connection().execute("CREATE TABLE t (v TEXT UNIQUE)")
    for value in range(6000):
        row = (f"{value:08}",)
        await db.write(
            lambda conn, row=row: conn.execute("INSERT INTO t VALUES (?)", row), small=True
        )
    with anyio.fail_after(5):
        while (tmp_path / f"{DB_NAME}-wal").stat().st_size > 24 * 2**20:
            await anyio.sleep(0.01)
    assert db.reader.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 6000


async def test_the_database_file_is_synced_before_the_log_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PASSIVE checkpoint does not sync the file; the RESTART would sync everything
    they copied, holding writes off meanwhile. The file is synced first, twice."""
    order: list[str] = []
    monkeypatch.setattr(store_db, "flush", lambda fd: order.append("flush") or True)
    monkeypatch.setattr(writer, "RESTART_LOG_PAGES", 8)
    monkeypatch.setattr(writer, "CHECKPOINT_EVERY", 16)
    db = Database(tmp_path)
    try:
        make_table(db)
        db.writer_connection().set_trace_callback(
            lambda sql: order.append(sql) if "checkpoint" in sql else None
        )
        for value in range(40):
            await db.write(inserting_one(value, []), small=True)
        with anyio.fail_after(5):
            while "PRAGMA wal_checkpoint(RESTART)" not in order:
                await anyio.sleep(0.01)
        assert rows_in_t(db) == 40
    finally:
        db.close()
    restart = order.index("PRAGMA wal_checkpoint(RESTART)")
    assert order[restart - 3 : restart] == ["flush", "PRAGMA wal_checkpoint(PASSIVE)", "flush"]


def test_a_file_that_cannot_be_synced_is_left_to_the_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_db, "FLUSH_FIRST_BYTES", 0)
    read_end, write_end = os.pipe()
    try:
        assert store_db.flush(read_end) is False  # EINVAL: nothing raised
    finally:
        os.close(read_end)
        os.close(write_end)


def test_only_a_large_file_is_synced_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x" * 4096)
    fd = os.open(path, os.O_RDONLY)
    try:
        monkeypatch.setattr(store_db, "FLUSH_FIRST_BYTES", 8192)
        assert store_db.flush(fd) is False  # the checkpoint's own sync is quick
        monkeypatch.setattr(store_db, "FLUSH_FIRST_BYTES", 4096)
        assert store_db.flush(fd) is True
    finally:
        os.close(fd)


# -- counts and pages --------------------------------------------------------------------


def counted(db: Database) -> dict[tuple[str, str], int]:
    return {
        (row[0], row[1]): row[2]
        for row in db.reader.execute("SELECT creator, platform_id, sessions FROM session_counts")
        if row[2]
    }


def actual(db: Database) -> dict[tuple[str, str], int]:
    return {
        (row[0], row[1]): row[2]
        for row in db.reader.execute(
            "SELECT creator, platform_id, COUNT(*) FROM sessions GROUP BY creator, platform_id"
        )
    }


async def test_counts_stay_right_under_concurrent_creates_and_deletes(db: Database) -> None:
    store = ChatStore(db)
    shuffle = random.Random(14)
    ids = [f"s{index}" for index in range(200)]

    async def create(session_id: str) -> None:
        creator = "alice" if int(session_id[1:]) % 3 else "bob"
        await store.start_turn(session_id, creator, None, user())

    async def delete(batch: list[str]) -> None:
        await store.delete_sessions(batch)

    async with anyio.create_task_group() as group:
        for index, session_id in enumerate(ids):
            group.start_soon(create, session_id)
            if index % 7 == 6:
                group.start_soon(delete, shuffle.sample(ids[: index + 1], 5))
    async with anyio.create_task_group() as group:  # turns on existing sessions too
        for session_id in ids[::2]:
            group.start_soon(create, session_id)
        group.start_soon(delete, ids[100:150])
    assert counted(db) == actual(db)
    for creator in ("alice", "bob"):
        _, total = await store.list_sessions(creator, None, 0, 20)
        assert total == sum(n for (who, _), n in actual(db).items() if who == creator)
    await store.start_turn("fresh", "carol", None, user())
    assert await store.delete_sessions(["fresh"], creator="dave") == []
    assert await store.delete_sessions(["fresh", "nope", "fresh"], creator="carol") == ["fresh"]
    left = db.reader.execute("SELECT COUNT(*) FROM history WHERE session_id = 'fresh'")
    assert left.fetchone()[0] == 0
    assert counted(db) == actual(db)


def bulk_sessions(db: Database, count: int, creator: str = "big") -> list[str]:
    """Sessions with distinct activity times, newest first in the returned order."""
    rows = [
        (f"id{index:05d}", creator, f"2026-01-01T00:00:{index // 1000:02d}.{index % 1000:06d}")
        for index in range(count)
    ]
    platform = ["webchat", "telegram"]
    db.writer_connection().executemany(
        "INSERT INTO sessions (session_id, platform_id, creator, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(sid, platform[i % 7 == 0], who, at, at) for i, (sid, who, at) in enumerate(rows)],
    )
    return [row[0] for row in sorted(rows, key=lambda row: row[2], reverse=True)]


@pytest.mark.parametrize("platform", [None, "telegram"])
async def test_pages_on_the_loop_and_on_the_pool_agree(db: Database, platform: str | None) -> None:
    store = ChatStore(db)
    newest_first = bulk_sessions(db, 2 * PAGE_ON_LOOP_ENTRIES + 30)
    if platform is not None:
        newest_first = [sid for sid in newest_first if int(sid[2:]) % 7 == 0]
    size = 20
    for offset in (
        0,
        PAGE_ON_LOOP_ENTRIES - 40,
        PAGE_ON_LOOP_ENTRIES - 10,
        1500,
        len(newest_first) - 5,
    ):
        rows, total = await store.list_sessions("big", platform, offset, size)
        assert total == len(newest_first)
        assert [row.session_id for row in rows] == newest_first[offset : offset + size]
    assert await store.list_sessions("big", platform, 10**30, size) == ([], len(newest_first))
    assert await store.list_sessions("nobody", platform, 0, size) == ([], 0)


async def test_deep_pages_run_off_the_loop(db: Database) -> None:
    """A deep page goes to the reader pool: the loop keeps running meanwhile."""
    store = ChatStore(db)
    bulk_sessions(db, 3 * PAGE_ON_LOOP_ENTRIES)
    used: list[str] = []
    original = db.read

    async def spy(work):  # type: ignore[no-untyped-def]
        used.append(threading.current_thread().name)
        return await original(work)

    db.read = spy  # type: ignore[method-assign]
    await store.list_sessions("big", None, 0, 20)
    assert used == []
    await store.list_sessions("big", None, 2 * PAGE_ON_LOOP_ENTRIES, 20)
    assert len(used) == 1


# -- migration ---------------------------------------------------------------------------


def test_the_scale_migration_counts_what_schema_1_held(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    migrate(conn, MIGRATIONS[:1])
    conn.executemany(
        "INSERT INTO sessions (session_id, creator, created_at, updated_at) VALUES (?, ?, '', '')",
        [(f"s{index}", "alice" if index % 2 else "bob") for index in range(9)],
    )
    conn.execute(
        "INSERT INTO attachments VALUES ('a', NULL, 'a', 'p', 5, '', 'text/plain', 'file', '')"
    )
    assert migrate(conn) == len(MIGRATIONS)
    counts = dict(conn.execute("SELECT creator, sessions FROM session_counts").fetchall())
    assert counts == {"alice": 4, "bob": 5}
    assert conn.execute("SELECT files, bytes FROM attachment_totals").fetchone() == (1, 5)
    conn.close()


def test_statements_keep_trigger_bodies_whole() -> None:
    script = """
    CREATE TABLE a (x);
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = 1; DELETE FROM a WHERE x = 2;
    END;
    DROP TABLE a;
    """
    found = [statement.split()[0:2] for statement in statements(script)]
    assert found == [["CREATE", "TABLE"], ["CREATE", "TRIGGER"], ["DROP", "TABLE"]]


async def test_the_writer_survives_a_write_that_breaks_its_savepoints(db: Database) -> None:
    make_table(db)

    def breaks(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("RELEASE write")  # the writer's own RELEASE then fails

    with pytest.raises(sqlite3.OperationalError, match="no such savepoint"):
        await db.write(breaks)
    assert not db.writer_connection().in_transaction  # rolled back, nothing half-done
    await db.write(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
    assert [tuple(row) for row in db.reader.execute("SELECT v FROM t")] == [(2,)]


async def test_the_sweeper_logs_a_failed_sweep_and_tries_again(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sweeper = Sweeper(db, tmp_path, Limits(retention_days=1), interval=0)
    calls: list[int] = []

    async def sweep() -> Swept:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        scope.cancel()
        return Swept()

    sweeper.sweep = sweep  # type: ignore[method-assign]
    with anyio.CancelScope() as scope:
        await sweeper.run()
    assert len(calls) == 2
    assert "sweep failed; trying again in 0 s" in caplog.text


async def test_reads_come_back_with_their_errors_from_low_priority_threads(
    db: Database,
) -> None:
    def niceness(conn: sqlite3.Connection) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert await db.read(niceness) == os.getpriority(os.PRIO_PROCESS, 0) + READER_NICENESS
    with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
        await db.read(lambda conn: conn.execute("SELECT * FROM nowhere"))
    assert await db.read(lambda conn: conn.execute("SELECT 7").fetchone()[0]) == 7


async def test_a_cancelled_read_leaves_the_reader_free(db: Database) -> None:
    gate = threading.Event()
    with anyio.move_on_after(0.01):
        await db.read(lambda conn: gate.wait(5))
    gate.set()
    assert await db.read(lambda conn: conn.execute("SELECT 8").fetchone()[0]) == 8


async def test_work_sees_the_callers_clock(db: Database) -> None:
    """Writes and reads run with the caller's context, so a deterministic source reaches
    the timestamps they take."""
    fixed = sources.DeterministicSource()
    token = sources.current.set(fixed)
    try:
        assert await db.write(lambda conn: sources.now()) == fixed.now()
        assert await db.read(lambda conn: sources.now()) == fixed.now()
    finally:
        sources.current.reset(token)


async def test_the_427_session_routes_keep_the_counts_right(db: Database) -> None:
    sessions = SessionStore(db)
    async with anyio.create_task_group() as group:
        for index in range(30):
            group.start_soon(sessions.create_session, f"c{index}", "erin", "webchat")
    async with anyio.create_task_group() as group:
        for index in range(0, 30, 3):
            group.start_soon(sessions.delete_session, f"c{index}")
    assert counted(db) == actual(db) == {("erin", "webchat"): 20}
    assert (await ChatStore(db).list_sessions("erin", None, 0, 5))[1] == 20

"""Bounded disk (F23): delete history rows and sessions idle longer than
``--retention-days``, and the oldest attachments beyond ``--max-attachment-bytes`` (both
off by default).

The sweeper runs in the background, in batches of ``SWEEP_BATCH`` rows, each one write
of a few milliseconds that joins the writer's group commit like any other, with a pause
between batches: requests never wait behind a whole sweep. An attachment's row is
deleted (committed) before its file, so a download sees either the file or
``Attachment not found``; a download that opened the file first reads it to the end.

History rows are deleted oldest id first while they are older than the cut, so a batch
never scans: a row written while the clock was wrong waits for the rows before it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
import anyio.to_thread

from astrlite.store import clock
from astrlite.store.chat import delete_sessions
from astrlite.store.db import Database

log = logging.getLogger("astrlite.sweeper")

# Rows per write: a few milliseconds of the writer, so a turn waits at most that long.
SWEEP_BATCH = 200
# Between batches, so turns and uploads keep most of the writer during a long sweep.
SWEEP_PAUSE = 0.005
# How often the limits are checked once everything is within them.
SWEEP_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    retention_days: float = 0.0  # 0: keep forever
    max_attachment_bytes: int = 0  # 0: no cap

    @property
    def active(self) -> bool:
        return self.retention_days > 0 or self.max_attachment_bytes > 0


@dataclass(frozen=True, slots=True)
class Swept:
    history: int = 0
    sessions: int = 0
    attachments: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(
            self.history + other.history,
            self.sessions + other.sessions,
            self.attachments + other.attachments,
        )

    @property
    def rows(self) -> int:
        return self.history + self.sessions + self.attachments


class Sweeper:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        limits: Limits,
        *,
        batch: int = SWEEP_BATCH,
        pause: float = SWEEP_PAUSE,
        interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._db = db
        self._data_dir = data_dir
        self._limits = limits
        self._batch = batch
        self._pause = pause
        self._interval = interval

    async def run(self) -> None:
        """Sweep now, then every interval, until cancelled."""
        while True:
            try:
                await self.sweep()
            except (sqlite3.Error, OSError):
                log.exception("sweep failed; trying again in %.0f s", self._interval)
            await anyio.sleep(self._interval)

    async def sweep(self) -> Swept:
        """Delete batches until everything is within the limits."""
        started = time.perf_counter()
        total = Swept()
        while True:
            swept = await self.sweep_batch()
            total += swept
            if swept.rows == 0:
                break
            await anyio.sleep(self._pause)
        if total.rows:
            log.info(
                "swept %d history rows, %d sessions, %d attachments in %.1f s",
                total.history,
                total.sessions,
                total.attachments,
                time.perf_counter() - started,
            )
        return total

    async def sweep_batch(self) -> Swept:
        """One batch of each kind that is over its limit."""
        swept = Swept()
        limits = self._limits
        if limits.retention_days > 0:
            cut = clock.iso(clock.now() - timedelta(days=limits.retention_days))
            batch = self._batch
            history = await self._db.write(lambda conn: _old_history(conn, cut, batch))
            sessions = await self._db.write(lambda conn: _idle_sessions(conn, cut, batch))
            swept += Swept(history=history, sessions=sessions)
        if limits.max_attachment_bytes > 0:
            cap, batch = limits.max_attachment_bytes, self._batch
            paths = await self._db.write(lambda conn: _oldest_attachments(conn, cap, batch))
            await anyio.to_thread.run_sync(_unlink_all, self._data_dir, paths)
            swept += Swept(attachments=len(paths))
        return swept


def _old_history(conn: sqlite3.Connection, cut: str, batch: int) -> int:
    rows = conn.execute(
        "SELECT id, created_at FROM history ORDER BY id LIMIT ?", (batch,)
    ).fetchall()
    last = None
    for row_id, created_at in rows:
        if created_at >= cut:
            break
        last = row_id
    if last is None:
        return 0
    return conn.execute("DELETE FROM history WHERE id <= ?", (last,)).rowcount


def _idle_sessions(conn: sqlite3.Connection, cut: str, batch: int) -> int:
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT session_id FROM sessions WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
            (cut, batch),
        )
    ]
    return len(delete_sessions(conn, ids))


def _oldest_attachments(conn: sqlite3.Connection, cap: int, batch: int) -> list[str]:
    """Delete the oldest rows until the total is within ``cap``; their files' paths."""
    excess = int(conn.execute("SELECT bytes FROM attachment_totals").fetchone()[0]) - cap
    if excess <= 0:
        return []
    paths = []
    last = None
    for rowid, path, size in conn.execute(
        "SELECT rowid, path, size FROM attachments ORDER BY rowid LIMIT ?", (batch,)
    ):
        if excess <= 0:
            break
        paths.append(path)
        last = rowid
        excess -= size
    if last is not None:
        conn.execute("DELETE FROM attachments WHERE rowid <= ?", (last,))
    return paths


def _unlink_all(data_dir: Path, paths: list[str]) -> None:
    for path in paths:
        try:
            (data_dir / path).unlink(missing_ok=True)
        except OSError as error:
            log.warning("cannot delete %s: %s", path, error.strerror)

"""Filling a data directory for the scale benchmark, behind the server's back: bulk
inserts in one transaction with journaling and syncing off, then back to WAL."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from astrlite.store.db import DB_NAME, administer

SESSIONS = 1_000_000
BIG_USER = "big"  # owns half of the sessions
BIG_SESSIONS = SESSIONS // 2
USER = "bench"  # the bench's chat user: 500 sessions, one of them long
USER_SESSIONS = 500
OTHER_USERS = 10_000
HISTORY = 1_000_000
LONG_SESSION_ROWS = 20_000
ATTACHMENTS = 100_000
ATTACHMENT_BYTES = 1024
OWNER = "static:1"  # the key_id of the bench's ASTRLITE_API_KEY
LONG_SESSION = "long-session"
SEED_SESSIONS = 20  # a full first page
# Activity spread over this many days back from now, one session per step.
SPAN_DAYS = 60
USER_CONTENT = json.dumps({"type": "user", "message": [{"type": "plain", "text": "hello"}]})
BOT_CONTENT = json.dumps({"type": "bot", "message": [{"type": "plain", "text": "hello"}]})


@dataclass(frozen=True, slots=True)
class Filled:
    seconds: float
    attachment_ids: list[str]  # a sample, for downloads


def _session_id(index: int) -> str:
    return str(uuid.UUID(int=(index * 0x9E3779B97F4A7C15F39CC0605CEDC835) % (1 << 128)))


def _stamps(count: int, now: datetime) -> list[str]:
    step = timedelta(days=SPAN_DAYS) / count
    return [(now - step * i).isoformat() for i in range(count)]


def _creator(index: int) -> str:
    if index < BIG_SESSIONS:
        return BIG_USER
    if index < BIG_SESSIONS + USER_SESSIONS:
        return USER
    return f"user{index % OTHER_USERS}"


def _sessions(stamps: list[str]) -> Iterator[tuple[str, ...]]:
    for index in range(SESSIONS):
        # Interleave owners in time so no user's sessions sit together on disk.
        stamp = stamps[(index * 7919) % SESSIONS]
        sid = LONG_SESSION if index == BIG_SESSIONS else _session_id(index)
        yield (sid, _creator(index), "hello", stamp, stamp)


def _history(stamps: list[str]) -> Iterator[tuple[str, str, str, str, str]]:
    other = HISTORY - LONG_SESSION_ROWS
    for index in range(other):  # two rows per session, oldest first
        sid = _session_id(SESSIONS - 1 - index // 2)
        stamp = stamps[SESSIONS - 1 - index // 2]
        yield _row(sid, index % 2 == 1, stamp)
    for index in range(LONG_SESSION_ROWS):
        yield _row(LONG_SESSION, index % 2 == 1, stamps[0])


def _row(session_id: str, bot: bool, stamp: str) -> tuple[str, str, str, str, str]:
    if bot:
        return (session_id, "bot", "bot", BOT_CONTENT, stamp)
    return (session_id, f"{OWNER}:{USER}", USER, USER_CONTENT, stamp)


def create_schema(data_dir: Path) -> None:
    administer(data_dir, lambda conn: None)


def fill(data_dir: Path, schema: Callable[[Path], None] = create_schema) -> Filled:
    """Create the schema (through some astrlite), then bulk-insert everything."""
    started = time.perf_counter()
    schema(data_dir)
    now = datetime.now(timezone.utc)
    stamps = _stamps(SESSIONS, now)
    conn = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -524288")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO sessions (session_id, platform_id, creator, display_name, is_group,"
        " config_id, created_at, updated_at) VALUES (?, 'webchat', ?, ?, 0, NULL, ?, ?)",
        _sessions(stamps),
    )
    conn.executemany(
        "INSERT INTO history (session_id, platform_id, sender_id, sender_name, content,"
        " created_at) VALUES (?, 'webchat', ?, ?, ?, ?)",
        _history(stamps),
    )
    ids = _attachments(conn, data_dir, stamps)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return Filled(time.perf_counter() - started, ids[:: ATTACHMENTS // 1000])


def _attachments(conn: sqlite3.Connection, data_dir: Path, stamps: list[str]) -> list[str]:
    payload = os.urandom(ATTACHMENT_BYTES)
    rows = []
    for index in range(ATTACHMENTS):
        folder = f"attachments/fill/{index % 100:02d}"
        if index < 100:
            (data_dir / folder).mkdir(parents=True, exist_ok=True)
        name = f"{index:06d}.bin"
        fd = os.open(data_dir / folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, payload)
        os.close(fd)
        stamp = stamps[SESSIONS - 1 - index * (SESSIONS // ATTACHMENTS)]
        attachment_id = _session_id(SESSIONS + index)
        rows.append(
            (
                attachment_id,
                OWNER,
                name,
                f"{folder}/{name}",
                ATTACHMENT_BYTES,
                "0" * 64,
                "application/octet-stream",
                "file",
                stamp,
            )
        )
    conn.executemany("INSERT INTO attachments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return [row[0] for row in rows]


def seed(data_dir: Path, schema: Callable[[Path], None] = create_schema) -> None:
    """The "empty" database: a full first page (PAGE sessions) for each bench user, so
    page 1 answers the same rows as on the filled one, and the long session, empty."""
    schema(data_dir)
    stamps = _stamps(2 * SEED_SESSIONS + 1, datetime.now(timezone.utc))
    rows = [
        (f"seed-{user}-{index}", user, "hello", stamps[2 * index + n], stamps[2 * index + n])
        for n, user in enumerate((BIG_USER, USER))
        for index in range(SEED_SESSIONS)
    ]
    rows.append((LONG_SESSION, USER, "hello", stamps[-1], stamps[-1]))
    conn = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    conn.executemany(
        "INSERT INTO sessions (session_id, platform_id, creator, display_name, is_group,"
        " config_id, created_at, updated_at) VALUES (?, 'webchat', ?, ?, 0, NULL, ?, ?)",
        rows,
    )
    conn.close()

"""Chat sessions and their history (docs/compatibility.md M8, F17, F20).

A session belongs to the username that created it (``creator``). Its ``updated_at``
moves with every message, user or bot (F17), and its ``display_name`` is the first user
message's text, trimmed (F20). History rows hold their content as ``json.dumps`` text with
its default separators, as the original stores it. Reads are short indexed queries on
the loop, except deep pages (a pooled reader thread); every write goes to the writer
thread's next group commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from astrlite.configs import WEBCHAT
from astrlite.sse import json_dumps
from astrlite.store import clock
from astrlite.store.db import Database

BOT_SENDER = "bot"
# A row's content as json.dumps(content) writes it: ASCII, so a lone surrogate is stored
# escaped.
_dumps_content = json_dumps(ensure_ascii=True)
# sqlite integers are signed 64-bit; a larger OFFSET cannot be bound (and matches nothing).
MAX_SQLITE_INT = 2**63 - 1

_SESSION_COLUMNS = (
    "session_id, platform_id, creator, display_name, is_group, config_id, created_at, updated_at"
)
_PAGE_COLUMNS = ", ".join(f"sessions.{name}" for name in _SESSION_COLUMNS.split(", "))
# A page whose end is within this many index entries is read on the event loop: walking
# a thousand entries costs well under a tenth of a millisecond, less than a thread hop.
PAGE_ON_LOOP_ENTRIES = 1000
# Ids per DELETE ... IN (...): well under sqlite's oldest limit of 999 bound parameters.
DELETE_CHUNK = 500


class SessionTaken(Exception):
    """The session exists and belongs to another username."""


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    platform_id: str
    creator: str
    display_name: str | None
    is_group: int
    config_id: str | None  # the bound config; None: the default config
    created_at: str
    updated_at: str

    def listed(self) -> dict[str, Any]:
        """The session as GET /api/v1/chat/sessions shows it (M8)."""
        return {
            "session_id": self.session_id,
            "platform_id": self.platform_id,
            "creator": self.creator,
            "display_name": self.display_name,
            "is_group": self.is_group,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: int
    sender_id: str
    sender_name: str | None
    content: dict[str, Any]


class UserMessage(NamedTuple):
    """A user turn's history row: ``{"type": "user", "message": parts}``."""

    sender_id: str
    sender_name: str
    parts: tuple[dict[str, Any], ...]
    title: str | None  # the session's display name, if it has none yet (F20)
    checkpoint_id: str | None = None  # the turn's llm_checkpoint_id


class StartedTurn(NamedTuple):
    user_row_id: int
    created_at: str
    config_id: str | None  # the session's binding after this turn's choice


def _session(row: sqlite3.Row) -> SessionRow:
    return SessionRow(**{name: row[name] for name in SessionRow.__slots__})


class ChatStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def session(self, session_id: str) -> SessionRow | None:
        row = self.db.reader.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else _session(row)

    async def list_sessions(
        self, creator: str, platform_id: str | None, offset: int, limit: int
    ) -> tuple[list[SessionRow], int]:
        """One page of a creator's sessions, newest activity first (F17), and the total.

        The total is kept by triggers (the scale migration in schema.py), so it costs one
        lookup however many sessions the creator has. A page near the start walks a few
        index entries and is read on the loop; a deeper one walks ``offset`` entries of
        the covering index (tens of milliseconds at half a million) and is read on a
        reader thread.
        """
        if offset + limit <= PAGE_ON_LOOP_ENTRIES:
            return _page(self.db.reader, creator, platform_id, offset, limit)
        return await self.db.read(lambda conn: _page(conn, creator, platform_id, offset, limit))

    def row_in_session(self, row_id: int, session_id: str) -> HistoryRow | None:
        """A history row, only if it belongs to this session (F13)."""
        if not 0 < row_id <= MAX_SQLITE_INT:
            return None
        row = self.db.reader.execute(
            "SELECT id, sender_id, sender_name, content FROM history"
            " WHERE id = ? AND session_id = ?",
            (row_id, session_id),
        ).fetchone()
        return None if row is None else _history(row)

    def context(self, session_id: str, before_id: int, turns: int) -> list[HistoryRow]:
        """The rows of the session's last ``turns`` turns before row ``before_id``.

        A turn starts at a user row; bot rows before the first kept user row (a session
        that opened with proactive messages) are kept only when fewer turns exist.
        """
        if turns <= 0:
            return []
        reader = self.db.reader
        first = reader.execute(
            "SELECT id FROM history WHERE session_id = ? AND id < ? AND sender_id != ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?",
            (session_id, before_id, BOT_SENDER, min(turns, MAX_SQLITE_INT) - 1),
        ).fetchone()
        start = 0 if first is None else int(first[0])
        rows = reader.execute(
            "SELECT id, sender_id, sender_name, content FROM history"
            " WHERE session_id = ? AND id >= ? AND id < ? ORDER BY id",
            (session_id, start, before_id),
        ).fetchall()
        return [_history(row) for row in rows]

    async def start_turn(
        self,
        session_id: str,
        creator: str,
        config_choice: str | None,
        user: UserMessage,
        *,
        new: bool = False,
    ) -> StartedTurn:
        """Create the session if needed, apply the config choice (None keeps the
        binding), write the user row; SessionTaken if another username owns it. ``new``:
        the server has just made the session id up, so there is no row to look for."""

        def work(conn: sqlite3.Connection) -> StartedTurn:
            now = clock.now_iso()
            row = (
                None
                if new
                else conn.execute(
                    "SELECT creator, config_id FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
            )
            if row is None:
                config_id = config_choice
                conn.execute(
                    "INSERT INTO sessions (session_id, platform_id, creator, display_name,"
                    " is_group, config_id, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    (session_id, WEBCHAT, creator, user.title, config_id, now, now),
                )
            else:
                if row["creator"] != creator:
                    raise SessionTaken(session_id)
                config_id = row["config_id"] if config_choice is None else config_choice
                conn.execute(
                    "UPDATE sessions SET config_id = ?, updated_at = ?,"
                    " display_name = COALESCE(display_name, ?) WHERE session_id = ?",
                    (config_id, now, user.title, session_id),
                )
            content = {"type": "user", "message": list(user.parts)}
            row_id = _insert(
                conn, session_id, user.sender_id, user.sender_name, content, now, user.checkpoint_id
            )
            return StartedTurn(row_id, now, config_id)

        return await self.db.write(work, small=True)

    async def delete_sessions(
        self, session_ids: Iterable[str], creator: str | None = None
    ) -> list[str]:
        """Delete sessions (only ``creator``'s, if given) with their history, in one
        write; the ids deleted. The per-creator counts stay right (the scale migration's
        triggers). A running turn is not stopped: its bot row lands in a session that is
        gone."""
        wanted = list(session_ids)
        return await self.db.write(lambda conn: delete_sessions(conn, wanted, creator))

    async def add_bot_row(
        self, session_id: str, content: dict[str, Any], checkpoint_id: str | None = None
    ) -> tuple[int, str]:
        """Write a bot history row; returns its id and creation time."""

        def work(conn: sqlite3.Connection) -> tuple[int, str]:
            now = clock.now_iso()
            row_id = _insert(conn, session_id, BOT_SENDER, BOT_SENDER, content, now, checkpoint_id)
            conn.execute(
                "UPDATE sessions SET updated_at = ? WHERE session_id = ?", (now, session_id)
            )
            return row_id, now

        return await self.db.write(work, small=True)


def _page(
    conn: sqlite3.Connection, creator: str, platform_id: str | None, offset: int, limit: int
) -> tuple[list[SessionRow], int]:
    where = "creator = ?"
    params: tuple[Any, ...] = (creator,)
    if platform_id:
        where += " AND platform_id = ?"
        params += (platform_id,)
    total = int(
        conn.execute(
            f"SELECT COALESCE(SUM(sessions), 0) FROM session_counts WHERE {where}", params
        ).fetchone()[0]
    )
    if offset >= total:
        return [], total
    # The page's rowids from the covering index alone, then only those rows.
    rows = conn.execute(
        f"SELECT {_PAGE_COLUMNS} FROM (SELECT rowid AS page_rowid FROM sessions"
        f" WHERE {where} ORDER BY updated_at DESC, session_id LIMIT ? OFFSET ?)"
        " JOIN sessions ON sessions.rowid = page_rowid"
        " ORDER BY updated_at DESC, session_id",
        (*params, limit, offset),
    ).fetchall()
    return [_session(row) for row in rows], total


def delete_sessions(
    conn: sqlite3.Connection, session_ids: Iterable[str], creator: str | None = None
) -> list[str]:
    """Delete sessions (only ``creator``'s, if given) and their history in the caller's
    transaction; the ids deleted. The per-creator counts follow by trigger."""
    wanted = list(dict.fromkeys(session_ids))
    deleted: list[str] = []
    for start in range(0, len(wanted), DELETE_CHUNK):
        chunk = wanted[start : start + DELETE_CHUNK]
        marks = ", ".join("?" * len(chunk))
        only, params = ("", chunk) if creator is None else (" AND creator = ?", [*chunk, creator])
        found = [
            row[0]
            for row in conn.execute(
                f"SELECT session_id FROM sessions WHERE session_id IN ({marks}){only}", params
            )
        ]
        if found:
            marks = ", ".join("?" * len(found))
            conn.execute(f"DELETE FROM history WHERE session_id IN ({marks})", found)
            conn.execute(f"DELETE FROM sessions WHERE session_id IN ({marks})", found)
            deleted += found
    return deleted


def _insert(
    conn: sqlite3.Connection,
    session_id: str,
    sender_id: str,
    sender_name: str,
    content: dict[str, Any],
    created_at: str,
    checkpoint_id: str | None = None,
) -> int:
    cursor = conn.execute(
        "INSERT INTO history (session_id, platform_id, sender_id, sender_name, content,"
        " created_at, llm_checkpoint_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            WEBCHAT,
            sender_id,
            sender_name,
            _dumps_content(content),
            created_at,
            checkpoint_id,
        ),
    )
    return int(cursor.lastrowid or 0)


def _history(row: sqlite3.Row) -> HistoryRow:
    return HistoryRow(row["id"], row["sender_id"], row["sender_name"], json.loads(row["content"]))

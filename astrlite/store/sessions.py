"""Sessions as the 4.27 session routes see them: create, read history, rename, delete
(P3, R6–R10). Reads run on the loop (indexed, bounded); writes on the writer thread."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from astrlite.store import clock
from astrlite.store.db import Database

SESSION_HISTORY_LIMIT = 1000  # GET /chat/sessions/{id} shows the newest rows (R8)


class SessionStore:
    """What the 4.27 session routes do to a session (P3, R6–R10)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_session(self, session_id: str, creator: str, platform_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            now = clock.now_iso()
            conn.execute(
                "INSERT INTO sessions (session_id, platform_id, creator, display_name,"
                " is_group, config_id, created_at, updated_at)"
                " VALUES (?, ?, ?, NULL, 0, NULL, ?, ?)",
                (session_id, platform_id, creator, now, now),
            )

        await self.db.write(work)

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """The newest SESSION_HISTORY_LIMIT rows, oldest first, as history entries.

        A row is never edited, so its ``updated_at`` is its ``created_at``."""
        rows = self.db.reader.execute(
            "SELECT * FROM (SELECT id, platform_id, sender_id, sender_name, content,"
            " llm_checkpoint_id, created_at FROM history WHERE session_id = ?"
            " ORDER BY id DESC LIMIT ?) ORDER BY id",
            (session_id, SESSION_HISTORY_LIMIT),
        ).fetchall()
        return [
            {
                "id": row["id"],
                "platform_id": row["platform_id"],
                "user_id": session_id,
                "sender_id": row["sender_id"],
                "sender_name": row["sender_name"],
                "content": json.loads(row["content"]),
                "llm_checkpoint_id": row["llm_checkpoint_id"],
                "created_at": row["created_at"],
                "updated_at": row["created_at"],
            }
            for row in rows
        ]

    async def rename(self, session_id: str, display_name: str | None) -> bool:
        """Set the display name (None keeps it); the session moves to the top of the list
        either way (R9). False: no such session."""

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE sessions SET display_name = COALESCE(?, display_name), updated_at = ?"
                " WHERE session_id = ?",
                (display_name, clock.now_iso(), session_id),
            )
            return cursor.rowcount > 0

        return await self.db.write(work)

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session and its history; False: no such session."""

        def work(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM history WHERE session_id = ?", (session_id,))
            cursor = conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            return cursor.rowcount > 0

        return await self.db.write(work)

"""Forward-only schema migrations. Version N is MIGRATIONS[N - 1]; never edit a
released migration, append a new one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: API keys (sha256 of the key at rest, F15), chat sessions and history,
    # attachments with an owner key (F11).
    """
    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        key_prefix TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_used_at TEXT,
        expires_at TEXT,
        revoked_at TEXT
    );
    CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        platform_id TEXT NOT NULL DEFAULT 'webchat',
        creator TEXT NOT NULL,
        display_name TEXT,
        is_group INTEGER NOT NULL DEFAULT 0,
        config_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX sessions_by_creator ON sessions (creator, updated_at DESC, session_id);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        platform_id TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        sender_name TEXT,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX history_by_session ON history (session_id, id);
    CREATE TABLE attachments (
        attachment_id TEXT PRIMARY KEY,
        owner_key_id TEXT,
        original_name TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        mime_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 2: a turn's checkpoint id on each of its history rows (427 §4.5).
    """
    ALTER TABLE history ADD COLUMN llm_checkpoint_id TEXT;
    """,
    # 3: find an attachment by its stored file name (the name a bot's media event
    # carries, fetched with GET /api/v1/files/content?filename=). The expression is the
    # path's last component; files/attachments.py queries with the same text.
    """
    CREATE INDEX attachments_by_stored_name ON attachments (
        replace(path, rtrim(path, replace(path, '/', '')), ''), owner_key_id
    );
    """,
)

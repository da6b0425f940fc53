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
    # 2: a turn's checkpoint id on each of its history rows (P4 run_events, R8).
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
    # 4: scale (docs/scale.md). Per-creator session counts kept by triggers, so a
    # page's total never counts rows; a covering index for pages (the platform filter
    # included); an activity index for the retention sweeper; the attachments' totals
    # for the size cap.
    """
    CREATE TABLE session_counts (
        creator TEXT NOT NULL,
        platform_id TEXT NOT NULL,
        sessions INTEGER NOT NULL,
        PRIMARY KEY (creator, platform_id)
    ) WITHOUT ROWID;
    INSERT INTO session_counts (creator, platform_id, sessions)
        SELECT creator, platform_id, COUNT(*) FROM sessions GROUP BY creator, platform_id;
    CREATE TRIGGER sessions_count_insert AFTER INSERT ON sessions BEGIN
        INSERT INTO session_counts (creator, platform_id, sessions)
            VALUES (NEW.creator, NEW.platform_id, 1)
            ON CONFLICT (creator, platform_id) DO UPDATE SET sessions = sessions + 1;
    END;
    CREATE TRIGGER sessions_count_delete AFTER DELETE ON sessions BEGIN
        UPDATE session_counts SET sessions = sessions - 1
            WHERE creator = OLD.creator AND platform_id = OLD.platform_id;
    END;
    CREATE TRIGGER sessions_count_move AFTER UPDATE OF creator, platform_id ON sessions
    BEGIN
        UPDATE session_counts SET sessions = sessions - 1
            WHERE creator = OLD.creator AND platform_id = OLD.platform_id;
        INSERT INTO session_counts (creator, platform_id, sessions)
            VALUES (NEW.creator, NEW.platform_id, 1)
            ON CONFLICT (creator, platform_id) DO UPDATE SET sessions = sessions + 1;
    END;
    DROP INDEX sessions_by_creator;
    CREATE INDEX sessions_by_creator
        ON sessions (creator, updated_at DESC, session_id, platform_id);
    CREATE INDEX sessions_by_activity ON sessions (updated_at);
    CREATE TABLE attachment_totals (
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    );
    INSERT INTO attachment_totals (files, bytes)
        SELECT COUNT(*), COALESCE(SUM(size), 0) FROM attachments;
    CREATE TRIGGER attachments_total_insert AFTER INSERT ON attachments BEGIN
        UPDATE attachment_totals SET files = files + 1, bytes = bytes + NEW.size;
    END;
    CREATE TRIGGER attachments_total_delete AFTER DELETE ON attachments BEGIN
        UPDATE attachment_totals SET files = files - 1, bytes = bytes - OLD.size;
    END;
    """,
)

"""``astrlite db stats`` and ``astrlite db vacuum``: the database seen from outside a
server. Stats only read (a running server is fine); vacuum holds the directory's
exclusive lock, so it is refused while a server runs and a server cannot start meanwhile."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from astrlite.store.db import DB_NAME, open_connection
from astrlite.store.errors import StoreError
from astrlite.store.lock import DirectoryLock

WAL_SUFFIX = "-wal"


@dataclass(frozen=True, slots=True)
class Stats:
    sessions: int
    history_rows: int
    attachments: int
    attachment_bytes: int  # as recorded in their rows
    api_keys: int
    database_bytes: int  # the main file
    wal_bytes: int
    free_bytes: int  # pages a vacuum would give back

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Vacuumed:
    before_bytes: int  # main file plus WAL
    after_bytes: int


def _existing(data_dir: Path) -> Path:
    path = data_dir / DB_NAME
    if not path.is_file():
        raise StoreError(f"no database in {data_dir}: check --data-dir")
    return path


def _on_disk(path: Path) -> int:
    wal = path.with_name(path.name + WAL_SUFFIX)
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def stats(data_dir: Path) -> Stats:
    path = _existing(data_dir)
    conn = open_connection(data_dir)
    try:

        def one(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0] or 0)

        conn.execute("BEGIN")
        found = Stats(
            sessions=one("SELECT SUM(sessions) FROM session_counts"),
            history_rows=one("SELECT COUNT(*) FROM history"),
            attachments=one("SELECT files FROM attachment_totals"),
            attachment_bytes=one("SELECT bytes FROM attachment_totals"),
            api_keys=one("SELECT COUNT(*) FROM api_keys"),
            database_bytes=path.stat().st_size,
            wal_bytes=_on_disk(path) - path.stat().st_size,
            free_bytes=one("PRAGMA freelist_count") * one("PRAGMA page_size"),
        )
        conn.execute("COMMIT")
        return found
    except sqlite3.DatabaseError as error:
        raise StoreError(f"cannot read {path}: {error}") from None
    finally:
        conn.close()


def vacuum(data_dir: Path) -> Vacuumed:
    """Rewrite the database compactly and empty the WAL; refused while a server runs."""
    path = _existing(data_dir)
    lock = DirectoryLock.for_maintenance(data_dir, "db vacuum")
    try:
        before = _on_disk(path)
        conn = open_connection(data_dir)
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA optimize")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot vacuum {path}: {error}") from None
        finally:
            conn.close()
        return Vacuumed(before, _on_disk(path))
    finally:
        lock.release()

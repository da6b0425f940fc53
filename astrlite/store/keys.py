"""API keys: format, storage (sha256 at rest, F15), management, and fast verification.

Keys are 256-bit random strings, so one sha256 is as safe as AstrBot's PBKDF2 and
costs microseconds instead of ~50 ms. The verifier keeps every key row in memory and
reloads when sqlite's data_version says another connection committed, so a revocation
(even by `astrlite keys revoke` in another process) applies to the very next request.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from astrlite import sources
from astrlite.principal import DEFAULT_SCOPES, WILDCARD, Principal, ScopeError, normalise
from astrlite.store import clock
from astrlite.store.db import Database

KEY_PREFIX = "abk_"
DISPLAY_PREFIX_CHARS = 12
TOUCH_INTERVAL_SECONDS = 60.0  # last_used_at is written at most once a minute per key (F15)
STATIC_KEY_MIN, STATIC_KEY_MAX = 16, 256
DEFAULT_SCOPE_SET = frozenset(DEFAULT_SCOPES)


class KeyError_(ValueError):
    """A key-management request that cannot be done; the message says why."""


def generate() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scopes(text: str | None) -> list[str]:
    """`chat,file` -> the normalised scopes of a new key (None: the defaults); a
    ScopeError (a KeyError_) says what is wrong, in AstrBot's words. Blank items are
    skipped, so `""` asks for no scope at all."""
    if text is None:
        return normalise(None)
    requested = [name.strip() for name in text.split(",") if name.strip()]
    try:
        return normalise(requested)
    except ScopeError as error:
        raise KeyError_(str(error)) from None


def create(
    conn: sqlite3.Connection,
    *,
    name: str | None = None,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
    created_by: str = "cli",
) -> dict[str, Any]:
    """Insert a new key; returns its key object (M4) plus the raw `api_key`."""
    if expires_in_days is not None and expires_in_days <= 0:
        raise KeyError_("expires_in_days must be greater than 0")
    raw = generate()
    created = clock.now()
    expires = clock.iso(created + timedelta(days=expires_in_days)) if expires_in_days else None
    key_id = sources.new_uuid()
    conn.execute(
        "INSERT INTO api_keys (key_id, name, key_hash, key_prefix, scopes, created_by,"
        " created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key_id,
            (name or "").strip() or "Untitled API Key",
            hash_key(raw),
            raw[:DISPLAY_PREFIX_CHARS],
            json.dumps(scopes if scopes is not None else list(DEFAULT_SCOPES)),
            created_by,
            clock.iso(created),
            clock.iso(created),
            expires,
        ),
    )
    row = conn.execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
    return {**key_object(row), "api_key": raw}


def key_object(row: sqlite3.Row) -> dict[str, Any]:
    """The key object in AstrBot's field order (docs/compatibility.md M4)."""
    expires_at = row["expires_at"]
    return {
        "key_id": row["key_id"],
        "name": row["name"],
        "key_prefix": row["key_prefix"],
        "scopes": json.loads(row["scopes"]),
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "last_used_at": row["last_used_at"],
        "expires_at": expires_at,
        "revoked_at": row["revoked_at"],
        "is_revoked": row["revoked_at"] is not None,
        "is_expired": expires_at is not None and clock.parse(expires_at) <= clock.now(),
    }


def list_keys(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM api_keys ORDER BY created_at DESC, key_id").fetchall()
    return [key_object(row) for row in rows]


def revoke(conn: sqlite3.Connection, key_id: str) -> None:
    now = clock.now_iso()
    cursor = conn.execute(
        "UPDATE api_keys SET revoked_at = ?, updated_at = ? WHERE key_id = ?", (now, now, key_id)
    )
    if cursor.rowcount == 0:
        raise KeyError_("API key not found")


def delete(conn: sqlite3.Connection, key_id: str) -> None:
    if conn.execute("DELETE FROM api_keys WHERE key_id = ?", (key_id,)).rowcount == 0:
        raise KeyError_("API key not found")


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM api_keys").fetchone()[0])


def check_static_key(key: str, where: str) -> str:
    if any(ch.isspace() for ch in key) or not STATIC_KEY_MIN <= len(key) <= STATIC_KEY_MAX:
        raise KeyError_(
            f"{where}: an API key must be {STATIC_KEY_MIN}-{STATIC_KEY_MAX} characters "
            "without whitespace"
        )
    return key


def read_key_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise KeyError_(f"cannot read API key file {path}: {error}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            keys.append(check_static_key(text, f"{path}:{number}"))
    return keys


@dataclass(frozen=True, slots=True)
class _KeyRow:
    principal: Principal
    expires_at: str | None
    revoked: bool


class KeyVerifier:
    """raw key -> Principal, from memory; reloads when the database changes."""

    def __init__(self, db: Database, static_keys: list[str]) -> None:
        self.db = db
        everything = frozenset({WILDCARD})
        self._static = {
            hash_key(key): Principal(f"static:{n}", everything)
            for n, key in enumerate(static_keys, 1)
        }
        self._rows: dict[str, _KeyRow] = {}
        self._version = -1
        self._last_touch: dict[str, float] = {}

    @property
    def has_static_keys(self) -> bool:
        return bool(self._static)

    def _reload(self) -> None:
        rows = self.db.reader.execute(
            "SELECT key_id, key_hash, scopes, expires_at, revoked_at FROM api_keys"
        ).fetchall()
        fresh = {}
        for row in rows:
            scopes = json.loads(row["scopes"])
            # Not a list (a row written by hand): the defaults, never the sub-scopes.
            scope_set = frozenset(scopes if isinstance(scopes, list) else DEFAULT_SCOPE_SET)
            principal = Principal(row["key_id"], scope_set)
            fresh[row["key_hash"]] = _KeyRow(principal, row["expires_at"], bool(row["revoked_at"]))
        self._rows = fresh

    def __call__(self, raw: str) -> Principal | None:
        digest = hash_key(raw)
        static = self._static.get(digest)
        if static is not None:
            return static
        version = self.db.data_version()
        if version != self._version:
            self._version = version
            self._reload()
        row = self._rows.get(digest)
        if row is None or row.revoked:
            return None
        if row.expires_at is not None and clock.parse(row.expires_at) <= clock.now():
            return None
        return row.principal

    async def touch_if_due(self, principal: Principal) -> None:
        """Record last_used_at, at most once a minute per key (F15)."""
        if principal.key_id.startswith("static:"):
            return
        now = time.monotonic()
        last = self._last_touch.get(principal.key_id)
        if last is not None and now - last < TOUCH_INTERVAL_SECONDS:
            return
        self._last_touch[principal.key_id] = now
        stamp = clock.now_iso()
        await self.db.write(
            lambda conn: conn.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (stamp, principal.key_id)
            )
        )

"""Attachments: files under attachments/YYYY/MM/DD/<uuid hex><safe suffix> (F8), one row
each, owned by the key that made them (F11).

A file is written to attachments/.incoming/ first and moved into place only when it is
complete; the row is committed only after the move. So a crash leaves at most a
temporary file (removed at the next start) and never a row without its file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from astrlite import sources
from astrlite.files import ATTACHMENTS_DIR, INCOMING_DIR, filenames, sniff
from astrlite.store import clock
from astrlite.store.db import Database

log = logging.getLogger("astrlite")

COPY_CHUNK = 1024 * 1024
# The last component of `path`, spelled exactly as the index of schema migration 2.
STORED_NAME_SQL = "replace(path, rtrim(path, replace(path, '/', '')), '')"


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    attachment_id: str
    owner_key_id: str | None
    original_name: str
    path: str  # relative to the data directory
    size: int
    sha256: str
    mime_type: str
    kind: str  # image | record | video | file
    created_at: str

    @property
    def stored_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class OpenedFile:
    """A stored file, open for reading; close it, or hand it to a FileRange."""

    file: BinaryIO
    size: int
    mtime: float

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True, slots=True)
class FileRange:
    """Bytes start..start+length of an opened file, as a response body: a FileBody
    (http/response.py), which the connection sends with sendfile and then closes."""

    opened: OpenedFile
    start: int
    length: int

    def file_slice(self) -> tuple[int, int, int]:
        return self.opened.file.fileno(), self.start, self.length

    async def aclose(self) -> None:
        self.opened.close()


def _row(row: sqlite3.Row) -> AttachmentRow:
    return AttachmentRow(**{name: row[name] for name in AttachmentRow.__slots__})


class AttachmentStore:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir
        self.root = data_dir / ATTACHMENTS_DIR
        self.incoming = self.root / INCOMING_DIR
        self.incoming.mkdir(parents=True, exist_ok=True)

    def get(self, attachment_id: str, owner_key_id: str) -> AttachmentRow | None:
        """The row, if it exists and belongs to this key (F11); None otherwise."""
        row = self.db.reader.execute(
            "SELECT * FROM attachments WHERE attachment_id = ? AND owner_key_id = ?",
            (attachment_id, owner_key_id),
        ).fetchone()
        return None if row is None else _row(row)

    def get_by_stored_name(self, stored_name: str, owner_key_id: str) -> AttachmentRow | None:
        """The row whose file is called `stored_name`, if it belongs to this key (F11)."""
        row = self.db.reader.execute(
            f"SELECT * FROM attachments WHERE {STORED_NAME_SQL} = ? AND owner_key_id = ?",
            (stored_name, owner_key_id),
        ).fetchone()
        return None if row is None else _row(row)

    async def delete(self, row: AttachmentRow) -> bool:
        """Delete a row, then its file; False when the row was already gone. A reader
        that has the file open keeps reading it (POSIX)."""
        deleted = await self.db.write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM attachments WHERE attachment_id = ?", (row.attachment_id,)
                ).rowcount
            )
        )
        if deleted:
            # Row first: a crash in between leaves an unreferenced file, never a row
            # whose file is missing.
            await anyio.to_thread.run_sync(self._unlink, row)
        return bool(deleted)

    def _unlink(self, row: AttachmentRow) -> None:
        try:
            self.absolute(row).unlink(missing_ok=True)
        except OSError as error:  # the row is gone already: nothing serves the file
            log.warning("attachment %s: cannot remove %s: %s", row.attachment_id, row.path, error)

    def absolute(self, row: AttachmentRow) -> Path:
        return self.data_dir / row.path

    async def open(self, row: AttachmentRow) -> OpenedFile:
        """Open a row's file for reading; OSError when it is gone or not a regular file."""
        return await anyio.to_thread.run_sync(_open_regular, self.absolute(row))

    def temporary_path(self) -> Path:
        return self.incoming / f"{sources.new_hex()}.part"

    def _final_path(self, original_name: str) -> tuple[Path, str]:
        today = clock.now()
        folder = f"{ATTACHMENTS_DIR}/{today:%Y/%m/%d}"
        name = sources.new_hex() + filenames.safe_suffix(original_name)
        return self.data_dir / folder / name, f"{folder}/{name}"

    def _place(self, temporary: Path, original_name: str) -> tuple[Path, str]:
        final, relative = self._final_path(original_name)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, final)
        return final, relative

    async def commit(
        self,
        temporary: Path,
        *,
        original_name: str,
        size: int,
        sha256: str,
        mime_type: str,
        kind: str,
        owner_key_id: str | None,
    ) -> AttachmentRow:
        """Move a complete temporary file into place, then commit its row."""
        final, relative = self._place(temporary, original_name)
        row = AttachmentRow(
            sources.new_uuid(),
            owner_key_id,
            original_name,
            relative,
            size,
            sha256,
            mime_type,
            kind,
            clock.now_iso(),
        )
        try:
            await self.db.write(lambda conn: _insert(conn, row))
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return row

    async def store_copy(
        self, source: Path, *, filename: str, kind: str | None, owner_key_id: str | None
    ) -> AttachmentRow:
        """Copy a file (a bot's media reply) into the store; its type is sniffed."""
        temporary = self.temporary_path()
        size, digest, head = await anyio.to_thread.run_sync(_copy, source, temporary)
        name = filenames.sanitize_filename(filename)
        sniffed = sniff.sniff(head, None, name)
        return await self.commit(
            temporary,
            original_name=name,
            size=size,
            sha256=digest,
            mime_type=sniffed.mime_type,
            kind=kind or sniffed.kind,
            owner_key_id=owner_key_id,
        )


def _insert(conn: sqlite3.Connection, row: AttachmentRow) -> None:
    names = AttachmentRow.__slots__
    conn.execute(
        f"INSERT INTO attachments ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        tuple(getattr(row, name) for name in names),
    )


def _open_regular(path: Path) -> OpenedFile:
    file = open(path, "rb", buffering=0)  # noqa: SIM115 (the OpenedFile owns it)
    try:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(f"not a regular file: {path}")
    except BaseException:
        file.close()
        raise
    return OpenedFile(file, info.st_size, info.st_mtime)


def _copy(source: Path, target: Path) -> tuple[int, str, bytes]:
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with open(source, "rb") as reader, open(target, "wb") as writer:
            while chunk := reader.read(COPY_CHUNK):
                if not head:
                    head = chunk[: sniff.SNIFF_BYTES]
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest(), head

"""Outbound request bodies made of bytes and attachment files, streamed from disk.

A body knows its length before it is sent (no chunked uploads: bot API servers behind
proxies often refuse them) and can be read more than once (to sign it, to retry it).
Files are read a slice at a time off the event loop, so a 100 MiB video never sits in
memory, whether it is sent raw (multipart) or as base64 inside a JSON document.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from astrlite.files.attachments import OpenedFile
from astrlite.im.base import SendError

# A multiple of 3, so the base64 of consecutive slices concatenates into the base64 of
# the whole file; ~1 MiB keeps the thread hop a small part of each read.
READ_SLICE = 3 * 256 * 1024


@dataclass(frozen=True, slots=True)
class FilePiece:
    file: OpenedFile
    base64: bool  # sent as its base64 text instead of its raw bytes

    @property
    def length(self) -> int:
        return 4 * -(-self.file.size // 3) if self.base64 else self.file.size


Piece = bytes | FilePiece


class Body:
    def __init__(self, pieces: Sequence[Piece]) -> None:
        self._pieces = tuple(pieces)
        self.length = sum(len(p) if isinstance(p, bytes) else p.length for p in self._pieces)

    def __aiter__(self) -> AsyncIterator[bytes]:
        """A fresh pass over the body (SendError if a file shrank meanwhile)."""
        return _Reader(self._pieces)


class _Reader:
    """An iterator object rather than an async generator: a request that fails midway
    then leaves nothing suspended that would need finalizing."""

    def __init__(self, pieces: tuple[Piece, ...]) -> None:
        self._pieces = pieces
        self._index = 0
        self._offset = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while self._index < len(self._pieces):
            piece = self._pieces[self._index]
            if isinstance(piece, bytes):
                self._index += 1
                return piece
            remaining = piece.file.size - self._offset
            if remaining <= 0:
                self._index += 1
                self._offset = 0
                continue
            size = min(READ_SLICE, remaining)
            data = await anyio.to_thread.run_sync(
                os.pread, piece.file.file.fileno(), size, self._offset
            )
            if not data:
                raise SendError("an attachment's file shrank while it was sent")
            self._offset += len(data)
            return base64.b64encode(data) if piece.base64 else data
        raise StopAsyncIteration


class InlineFiles:
    """JSON documents with files inside as base64 strings.

    ``marker(file)`` stands in for the file's base64 in any string of the document;
    ``body(document)`` serializes it and splices the files in while sending. Markers
    carry a random nonce, so no text a client sends can be mistaken for one.
    """

    def __init__(self) -> None:
        self._nonce = secrets.token_hex(16)
        self._files: list[OpenedFile] = []
        self._pattern = re.compile(rf"astrlite-inline-{self._nonce}-(\d+)".encode())

    def marker(self, file: OpenedFile) -> str:
        self._files.append(file)
        return f"astrlite-inline-{self._nonce}-{len(self._files) - 1}"

    def body(self, document: Any) -> Body:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        pieces: list[Piece] = []
        start = 0
        for found in self._pattern.finditer(text):
            pieces.append(text[start : found.start()])
            pieces.append(FilePiece(self._files[int(found.group(1))], base64=True))
            start = found.end()
        pieces.append(text[start:])
        return Body([piece for piece in pieces if piece != b""])

"""A chunked response body decoded over whole reads (RFC 9112 §7.1).

h11 makes, validates and dispatches one event per chunk, and a streaming upstream sends
each token as its own chunk: most of a relayed token's cost. This decoder takes what
arrived and hands back its payload in one piece: per chunk, one find of CRLF, one hex
number and one slice.
"""

from __future__ import annotations

# 15 hex digits are 2**60 - 1 bytes, more than any body; a longer size is refused before
# an integer is made of it (RFC 9112 §7.1: guard against overflowing chunk sizes).
MAX_SIZE_DIGITS = 15
# A chunk-size line (with its extensions) or the trailer section: bounded like a head.
MAX_LINE_BYTES = 64 * 1024
_HEX = b"0123456789abcdefABCDEF"
_BWS = b" \t"


class ChunkedBody:
    """feed() the bytes of a chunked body as they arrive; it returns their payload.

    After the last chunk and the trailer section (skipped) `done` is true and `leftover`
    holds whatever followed them. Malformed framing sets `error` (the problem, in words),
    after returning the payload that came before it.
    """

    __slots__ = ("_pending", "_remaining", "_state", "done", "error", "leftover")

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self) -> None:
        self._pending = b""  # bytes of a size line, a chunk's CRLF or the trailer section
        self._remaining = 0  # payload bytes of the current chunk still to come
        self._state = self._SIZE
        self.done = False
        self.error: str | None = None
        self.leftover = b""

    def feed(self, data: bytes) -> bytes:
        if self.done or self.error is not None:
            return b""
        if self._pending:
            data, self._pending = self._pending + data, b""
        pieces: list[bytes] = []
        pos, end, state = 0, len(data), self._state
        try:
            while pos < end:
                if state == self._SIZE:
                    eol = data.find(b"\r\n", pos)
                    if eol < 0:
                        if end - pos > MAX_LINE_BYTES:
                            raise ValueError("chunk-size line longer than 64 KiB")
                        break
                    size = _chunk_size(data[pos:eol])
                    pos = eol + 2
                    if size == 0:
                        state = self._TRAILER
                        continue
                    stop = pos + size
                    if stop + 2 <= end and data[stop : stop + 2] == b"\r\n":
                        pieces.append(data[pos:stop])  # the common case: a whole chunk
                        pos = stop + 2
                        continue
                    self._remaining, state = size, self._DATA
                elif state == self._DATA:
                    stop = min(pos + self._remaining, end)
                    pieces.append(data[pos:stop])
                    self._remaining -= stop - pos
                    pos = stop
                    if not self._remaining:
                        state = self._DATA_END
                elif state == self._DATA_END:
                    if end - pos < 2:
                        if data[pos:] != b"\r":
                            raise ValueError("chunk data longer than its declared size")
                        break
                    if data[pos : pos + 2] != b"\r\n":
                        raise ValueError("chunk data longer than its declared size")
                    pos += 2
                    state = self._SIZE
                else:  # the trailer section: fields, each ending in CRLF, then CRLF
                    if data.startswith(b"\r\n", pos):
                        pos += 2
                    else:
                        stop = data.find(b"\r\n\r\n", pos)
                        if stop < 0:
                            if end - pos > MAX_LINE_BYTES:
                                raise ValueError("trailer section longer than 64 KiB")
                            break
                        pos = stop + 4
                    self.done = True
                    self.leftover = data[pos:]
                    pos = end
        except ValueError as exc:
            self.error = str(exc)
            pos = end
        self._state = state
        if pos < end:
            self._pending = data[pos:]
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)


def _chunk_size(line: bytes) -> int:
    """chunk-size [ chunk-ext ]: the size; the extensions are ignored."""
    size, semicolon, extensions = line.partition(b";")
    if semicolon and (b"\r" in extensions or b"\n" in extensions or b"\0" in extensions):
        raise ValueError(f"malformed chunk extension in {_shown(line)}")
    size = size.rstrip(_BWS)  # BWS before ";" (and, as h11 allows, at the end)
    if not size or size.strip(_HEX):
        raise ValueError(f"chunk size {_shown(line)} is not a hex number")
    if len(size) > MAX_SIZE_DIGITS:
        raise ValueError(f"chunk size with more than {MAX_SIZE_DIGITS} hex digits")
    return int(size, 16)


def _shown(line: bytes) -> str:
    return repr(line[:40])[1:]

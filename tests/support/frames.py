"""WebSocket frames as a client sends them, written by hand (any bytes a test wants)."""

from __future__ import annotations

import struct

MASK = b"\x5a\x13\xc4\x09"


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    masked: bool = True,
    rsv: int = 0,
    length: int | None = None,
    mask: bytes = MASK,
) -> bytes:
    """A frame as a client sends it, written by hand; `length` forges the size."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    bit = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", first, bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, bit | 127, size)
    if not masked:
        return head + payload
    masked_payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked_payload

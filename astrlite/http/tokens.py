"""Comma-separated header tokens (Upgrade, Connection), and whether a request asks for a
WebSocket: every request is asked, so this stays apart from the framing in websocket.py,
which is loaded when a WebSocket route is first used."""

from __future__ import annotations

from collections.abc import Iterable


def header_tokens(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> set[str]:
    found: set[str] = set()
    for key, value in headers:
        if key.lower() == name:
            found.update(t.strip().lower() for t in value.decode("latin-1").split(","))
    return found


def wants_websocket(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request asks to be upgraded to a WebSocket at all."""
    return "websocket" in header_tokens(headers, b"upgrade")

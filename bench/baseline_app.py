"""The baseline: a bare ASGI app under uvicorn --http h11 answering the same JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

BOTS = b'{"status":"ok","message":null,"data":{"bot_ids":[]}}\n'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BOTS)).encode())]


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BOTS})

"""The baseline: a bare ASGI app under uvicorn --http h11 answering the same JSON."""

from __future__ import annotations

from typing import Any

from bench.baseline_sse import Receive, Send

BOTS = b'{"status":"ok","message":null,"data":{"bot_ids":[]}}\n'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BOTS)).encode())]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BOTS})

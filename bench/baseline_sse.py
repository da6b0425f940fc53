"""The chat baseline: a bare ASGI app under uvicorn --http h11 streaming the same SSE
events as astrlite's ``echo`` provider, with nothing behind them.

``POST /api/v1/chat`` with ``{"message": "<text>"}`` streams, one ``send`` per event (what
a plain streaming ASGI app does), the events an ``echo`` turn sends: ``session_id``, a
streamed ``plain`` per word of ``Echo: <text>``, ``agent_stats``, ``complete``,
``message_saved`` and ``end``, with the same keys, ids of the same length and the same
``json.dumps`` framing, so every event has the size of astrlite's. No history, no turn
queue, no heartbeats. ``GET /`` answers for the start-up probe.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
]
OK = b'{"status":"ok","message":null,"data":{}}\n'
OK_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(OK)).encode())]


def frame(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


def echo_events(text: str) -> Iterator[dict[str, Any]]:
    """The events of a streamed echo turn, in astrlite's order and shapes."""
    started = time.time()
    session_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    reply = f"Echo: {text}" if text else "Echo:"
    words = reply.split(" ")
    yield {"type": "session_id", "data": None, "session_id": session_id}
    for index, word in enumerate(words):
        delta = word if index == 0 else " " + word
        yield {
            "type": "plain",
            "data": delta,
            "streaming": True,
            "chain_type": None,
            "message_id": message_id,
        }
    now = time.time()
    usage = {"input_other": len(words) - 1, "input_cached": 0, "output": len(words)}
    yield {
        "type": "agent_stats",
        "data": {
            "token_usage": usage,
            "start_time": started,
            "end_time": now,
            "time_to_first_token": now - started,
        },
    }
    yield {
        "type": "complete",
        "data": reply,
        "reasoning": "",
        "streaming": True,
        "message_id": message_id,
    }
    yield {
        "type": "message_saved",
        "data": {"id": 1, "created_at": "2025-01-01T00:00:00.000000+00:00"},
    }
    yield {"type": "end", "data": "", "streaming": False, "message_id": message_id}


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 200, "headers": OK_HEADERS})
        await send({"type": "http.response.body", "body": OK})
        return
    text = str(json.loads(body).get("message", ""))
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    for event in echo_events(text):
        await send({"type": "http.response.body", "body": frame(event), "more_body": True})
    await send({"type": "http.response.body", "body": b""})

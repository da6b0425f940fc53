"""The WebSocket baseline: a bare ASGI app under ``uvicorn --ws websockets`` sending the
same frames as an astrlite ``echo`` turn on /api/v1/chat/ws, with nothing behind them.

Each text message ``{"message": "<text>"}`` gets, one ``websocket.send`` per event (what a
plain ASGI WebSocket app does), the events of bench/baseline_sse.py with the two ids a WS
turn adds, framed as the original's send_json (spaces, non-ASCII escaped): so every frame
has the size of astrlite's. No auth, history, queue or keep-alive. ``GET /`` answers for
the start-up probe.
"""

from __future__ import annotations

import json
from typing import Any

from bench.baseline_sse import OK, OK_HEADERS, Receive, Send, echo_events


def ws_frames(text: str) -> list[str]:
    frames = []
    session_id = ""
    for event in echo_events(text):
        if event["type"] == "session_id":
            session_id = event["session_id"]
            event["message_id"] = "00000000-0000-4000-8000-000000000000"
        elif event["type"] == "message_saved":
            event["session_id"] = session_id
        frames.append(json.dumps(event))
    return frames


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": OK_HEADERS})
        await send({"type": "http.response.body", "body": OK})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = str(json.loads(message.get("text") or message["bytes"]).get("message", ""))
        for frame in ws_frames(text):
            await send({"type": "websocket.send", "text": frame})

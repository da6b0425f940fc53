"""The relay floor: a bare ASGI app under uvicorn --http h11 relaying a streamed chat from
the OpenAI-compatible upstream at ``$BENCH_UPSTREAM`` (host:port), with nothing else.

``POST /api/v1/chat`` sends the upstream the request astrlite's ``openai`` provider sends,
over a pooled keep-alive asyncio connection (TCP_QUICKACK after each request, as astrlite
does, so both pay the same for the upstream's socket options), parses the chunked SSE
reply and sends, one ``send`` per event, the events of a streamed turn with astrlite's
shapes (bench/baseline_sse.py): ``session_id``, a ``plain`` per delta, ``agent_stats``,
``complete``, ``message_saved``, ``end``. No history, no auth, no turn queue.
``GET /`` answers for the start-up probe.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from typing import Any

from bench.baseline_sse import OK, OK_HEADERS, SSE_HEADERS, Receive, Send, frame, read_body

HOST, _, PORT = os.environ.get("BENCH_UPSTREAM", "127.0.0.1:0").partition(":")
REQUEST_HEAD = (
    "POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    "Accept: text/event-stream\r\nContent-Length: {length}\r\n\r\n"
)
_idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []


async def upstream_events(text: str) -> Any:
    """Yield each ``data:`` payload of the upstream's streamed reply, decoded."""
    reader, writer = _idle.pop() if _idle else await asyncio.open_connection(HOST, int(PORT))
    payload = {
        "model": "bench",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body = json.dumps(payload).encode()
    writer.write(REQUEST_HEAD.format(host=f"{HOST}:{PORT}", length=len(body)).encode() + body)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    await reader.readuntil(b"\r\n\r\n")
    buffer = b""
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
        data = await reader.readexactly(size + 2)
        if not size:
            _idle.append((reader, writer))
            return
        buffer += data[:-2]
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            line = event.removeprefix(b"data: ")
            if line != b"[DONE]":
                yield json.loads(line)


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 200, "headers": OK_HEADERS})
        await send({"type": "http.response.body", "body": OK})
        return
    started = time.time()
    text = str(json.loads(body).get("message", ""))
    session_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})

    async def event(value: dict[str, Any]) -> None:
        await send({"type": "http.response.body", "body": frame(value), "more_body": True})

    await event({"type": "session_id", "data": None, "session_id": session_id})
    reply, usage, first = [], {}, 0.0
    async for chunk in upstream_events(text):
        usage = chunk.get("usage") or usage
        choices = chunk.get("choices") or [{}]
        delta = choices[0].get("delta", {}).get("content")
        if delta:
            first = first or time.time()
            reply.append(delta)
            plain = {"type": "plain", "data": delta, "streaming": True, "chain_type": None}
            await event({**plain, "message_id": message_id})
    now = time.time()
    tokens = {
        "input_other": usage.get("prompt_tokens", 0),
        "input_cached": 0,
        "output": usage.get("completion_tokens", 0),
    }
    stats = {"token_usage": tokens, "start_time": started, "end_time": now}
    await event({"type": "agent_stats", "data": {**stats, "time_to_first_token": first - started}})
    complete = {"type": "complete", "data": "".join(reply), "reasoning": "", "streaming": True}
    await event({**complete, "message_id": message_id})
    saved = {"id": 1, "created_at": "2025-01-01T00:00:00.000000+00:00"}
    await event({"type": "message_saved", "data": saved})
    await event({"type": "end", "data": "", "streaming": False, "message_id": message_id})
    await send({"type": "http.response.body", "body": b""})

"""An OpenAI-compatible /chat/completions server on 127.0.0.1, scripted per request.

Each request takes the next queued Reply: a status, a body sent as chunks of a chunked
response, and an ending (finish, stall until the client leaves, or cut the connection).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.abc import ByteStream

from tests.fakes.http_server import (
    LAST_CHUNK,
    FakeServer,
    Received,
    chunk,
    chunked_head,
    serve,
    wait_until_closed,
)

DONE = b"data: [DONE]\n\n"


def sse(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def delta(content: str | None = None, reasoning: str | None = None) -> bytes:
    fields: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        fields["content"] = content
    if reasoning is not None:
        fields["reasoning_content"] = reasoning
    return sse({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": fields}]})


def usage(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        value["prompt_tokens_details"] = {"cached_tokens": cached}
    return value


def usage_chunk(prompt: int, completion: int, cached: int | None = None) -> bytes:
    return sse(
        {
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": usage(prompt, completion, cached),
        }
    )


def completion(
    content: str, reasoning: str | None = None, used: dict[str, Any] | None = None
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    body: dict[str, Any] = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message}],
    }
    if used is not None:
        body["usage"] = used
    return json.dumps(body).encode()


def error_body(message: str, kind: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    content_type: str = "text/event-stream"
    parts: Sequence[bytes] = ()
    end: Literal["finish", "stall", "cut"] = "finish"


@dataclass
class OpenAIUpstream:
    replies: list[Reply] = field(default_factory=list)
    client_gone: anyio.Event = field(default_factory=anyio.Event)
    server: FakeServer | None = None
    tls: bool = False

    @property
    def base_url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.port}/v1"

    @property
    def requests(self) -> list[Received]:
        assert self.server is not None
        return self.server.requests

    def sent_json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].body)

    async def handle(self, request: Received, stream: ByteStream) -> bool:
        reply = self.replies.pop(0)
        await stream.send(chunked_head(reply.status, (("content-type", reply.content_type),)))
        for part in reply.parts:
            await stream.send(chunk(part))
        if reply.end == "finish":
            await stream.send(LAST_CHUNK)
            return True
        if reply.end == "stall":
            await wait_until_closed(stream)
            self.client_gone.set()
        return False


@asynccontextmanager
async def openai_upstream(tls: ssl.SSLContext | None = None) -> AsyncIterator[OpenAIUpstream]:
    upstream = OpenAIUpstream(tls=tls is not None)
    async with serve(upstream.handle, tls) as server:
        upstream.server = server
        yield upstream

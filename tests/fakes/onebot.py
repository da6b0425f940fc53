"""A OneBot v11 HTTP API (what NapCat and Lagrange expose), checking what they check.

Per the v11 spec (communication/http): 401 without an access token, 403 with a wrong
one, 406 for a POST body that is not JSON, 400 for malformed JSON, 404 for an unknown
action; every action that runs answers 200 with `status`/`retcode`. Parameter and
segment problems answer retcode 1400, an unknown target retcode 1200, NapCat's codes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from anyio.abc import ByteStream

from tests.fakes.http_server import FakeServer, Received, response, serve

ACTIONS = {"/send_private_msg": "user_id", "/send_group_msg": "group_id"}
MEDIA_SEGMENTS = ("image", "record", "video")


@dataclass
class Sent:
    action: str
    target: int
    segments: list[dict[str, Any]]
    files: list[bytes]  # the decoded base64:// payloads, in segment order


@dataclass
class OneBot:
    server: FakeServer
    access_token: str
    known_targets: set[int]
    sent: list[Sent] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url


def _answer(status: int, body: dict[str, Any] | None = None) -> bytes:
    if body is None:
        return response(status)
    data = json.dumps(body).encode()
    return response(status, (("content-type", "application/json"),), data)


def _failed(retcode: int, message: str) -> bytes:
    body = {"status": "failed", "retcode": retcode, "data": None, "message": message}
    return _answer(200, {**body, "wording": message})


def _check_segment(segment: Any) -> str | None:
    """The problem with a segment, or None."""
    if not isinstance(segment, dict) or not isinstance(segment.get("data"), dict):
        return "segment must be an object with data"
    kind, data = segment.get("type"), segment["data"]
    if kind == "text":
        return None if isinstance(data.get("text"), str) else "text segment needs text"
    if kind == "reply":
        return None if isinstance(data.get("id"), str) else "reply segment needs an id string"
    if kind in MEDIA_SEGMENTS:
        file = data.get("file")
        if not isinstance(file, str) or not file.startswith("base64://"):
            return f"{kind} segment needs a file"
        try:
            base64.b64decode(file[len("base64://") :], validate=True)
        except binascii.Error:
            return f"{kind} segment: invalid base64"
        return None
    return f"unsupported segment type {kind}"


def handle(bot: OneBot, request: Received) -> bytes:
    if bot.access_token:
        authorization = request.header("authorization")
        if authorization is None:
            return _answer(401)
        if authorization != f"Bearer {bot.access_token}":
            return _answer(403)
    target_key = ACTIONS.get(request.target.split("?", 1)[0])
    if target_key is None:
        return _answer(404)
    content_type = (request.header("content-type") or "").split(";")[0].strip()
    if request.method != "POST" or content_type != "application/json":
        return _answer(406)
    try:
        params = json.loads(request.body)
    except ValueError:
        return _answer(400)
    target, segments = params.get(target_key), params.get("message")
    if not isinstance(target, int) or isinstance(target, bool):
        return _failed(1400, f"{target_key} must be a number")
    if not isinstance(segments, list) or not segments:
        return _failed(1400, "message must be a non-empty segment list")
    for segment in segments:
        problem = _check_segment(segment)
        if problem is not None:
            return _failed(1400, problem)
    if target not in bot.known_targets:
        return _failed(1200, f"no such {target_key}: {target}")
    files = [
        base64.b64decode(s["data"]["file"][len("base64://") :])
        for s in segments
        if s["type"] in MEDIA_SEGMENTS
    ]
    bot.sent.append(Sent(request.target, target, segments, files))
    data = {"message_id": len(bot.sent)}
    return _answer(200, {"status": "ok", "retcode": 0, "data": data, "message": "", "wording": ""})


@asynccontextmanager
async def onebot(access_token: str, known_targets: set[int]) -> AsyncIterator[OneBot]:
    holder: list[OneBot] = []

    async def handler(request: Received, stream: ByteStream) -> bool:
        await stream.send(handle(holder[0], request))
        return True

    async with serve(handler) as server:
        holder.append(OneBot(server, access_token, known_targets))
        yield holder[0]

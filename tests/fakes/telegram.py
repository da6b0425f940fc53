"""A Telegram Bot API server, checking what the real one checks and answering its error
shape, ``{"ok": false, "error_code": N, "description": "..."}``.

``/bot<token>/<method>``: a wrong token is 401 Unauthorized, an unknown method 404 Not
Found. sendMessage takes JSON; the media methods take multipart/form-data with the file
in the field named after the method (photo, voice, audio, video, document), with a
filename. Problems with the chat, the text, a photo that is no image or the reply answer
400 with Telegram's descriptions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from anyio.abc import ByteStream

from tests.fakes.http_server import FakeServer, Received, response, serve

FILE_FIELDS = {
    "sendPhoto": "photo",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendDocument": "document",
}
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")
MAX_TEXT = 4096


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    method: str
    fields: dict[str, Any]  # JSON values, or the text fields of a form
    upload: Upload | None = None


@dataclass
class BotApi:
    server: FakeServer
    token: str
    chats: set[int]
    calls: list[Call] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url


class Refused(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _json(status: int, body: dict[str, Any]) -> bytes:
    return response(status, (("content-type", "application/json"),), json.dumps(body).encode())


def parse_form(body: bytes, content_type: str) -> dict[str, tuple[dict[str, str], bytes]]:
    """name -> (disposition parameters, content) of a multipart/form-data body."""
    kind, _, params = content_type.partition(";")
    boundary = params.strip().removeprefix("boundary=").encode()
    if kind.strip() != "multipart/form-data" or not boundary:
        raise Refused(400, "Bad Request: there is no file in the request")
    start, end = b"--" + boundary + b"\r\n", b"\r\n--" + boundary + b"--\r\n"
    if not body.startswith(start) or not body.endswith(end):
        raise Refused(400, "Bad Request: malformed multipart body")
    form: dict[str, tuple[dict[str, str], bytes]] = {}
    for section in body[len(start) : -len(end)].split(b"\r\n--" + boundary + b"\r\n"):
        head, _, content = section.partition(b"\r\n\r\n")
        headers = dict(
            line.decode().split(": ", 1) for line in head.split(b"\r\n") if b": " in line
        )
        disposition = headers.get("Content-Disposition", "")
        params_out = {"content-type": headers.get("Content-Type", "")}
        for item in disposition.split(";")[1:]:
            key, _, value = item.strip().partition("=")
            params_out[key] = value.strip('"')
        form[params_out["name"]] = (params_out, content)
    return form


def _chat(bot: BotApi, value: Any) -> int:
    try:
        chat_id = int(value)
    except (TypeError, ValueError):
        raise Refused(400, "Bad Request: chat not found") from None
    if chat_id not in bot.chats:
        raise Refused(400, "Bad Request: chat not found")
    return chat_id


def _reply(bot: BotApi, value: Any) -> None:
    if value is None:
        return
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict) or not isinstance(parsed.get("message_id"), int):
        raise Refused(400, "Bad Request: can't parse reply parameters JSON object")
    if not 0 < parsed["message_id"] <= len(bot.calls):
        raise Refused(400, "Bad Request: message to be replied not found")


def _call(bot: BotApi, method: str, request: Received) -> Call:
    content_type = request.header("content-type") or ""
    if method == "sendMessage":
        if content_type != "application/json":
            raise Refused(400, "Bad Request: message text is empty")
        fields = json.loads(request.body)
        _chat(bot, fields.get("chat_id"))
        _reply(bot, fields.get("reply_parameters"))
        text = fields.get("text")
        if not isinstance(text, str) or not text:
            raise Refused(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise Refused(400, "Bad Request: message is too long")
        return Call(method, fields)
    form = parse_form(request.body, content_type)
    texts = {
        name: data.decode() for name, (params, data) in form.items() if "filename" not in params
    }
    _chat(bot, texts.get("chat_id"))
    _reply(bot, texts.get("reply_parameters"))
    file_field = FILE_FIELDS[method]
    if file_field not in form or "filename" not in form[file_field][0]:
        raise Refused(400, f"Bad Request: there is no {file_field} in the request")
    params, data = form[file_field]
    if method == "sendPhoto" and not data.startswith(IMAGE_MAGIC):
        raise Refused(400, "Bad Request: IMAGE_PROCESS_FAILED")
    return Call(method, texts, Upload(params["filename"], params["content-type"], data))


def handle(bot: BotApi, request: Received) -> bytes:
    prefix, _, method = request.target.lstrip("/").partition("/")
    if prefix != f"bot{bot.token}":
        return _json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    if request.method != "POST" or (method != "sendMessage" and method not in FILE_FIELDS):
        return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
    try:
        call = _call(bot, method, request)
    except Refused as refused:
        body = {"ok": False, "error_code": refused.code, "description": refused.description}
        return _json(refused.code, body)
    bot.calls.append(call)
    result = {"message_id": len(bot.calls), "chat": {"id": int(call.fields["chat_id"])}}
    return _json(200, {"ok": True, "result": result})


@asynccontextmanager
async def bot_api(token: str, chats: set[int]) -> AsyncIterator[BotApi]:
    holder: list[BotApi] = []

    async def handler(request: Received, stream: ByteStream) -> bool:
        await stream.send(handle(holder[0], request))
        return True

    async with serve(handler) as server:
        holder.append(BotApi(server, token, chats))
        yield holder[0]

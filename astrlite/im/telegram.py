"""The ``telegram`` platform: the Telegram Bot API, or a self-hosted Bot API server.

Entry: ``{"id", "type": "telegram", "enable", "token", "base_url" (default the public
API), "timeout", "ca_file", "proxy"}``. The umo's session is the chat id (a number, or
``@channelusername``), for any message type. One call per piece, in part order: text
(adjacent plain parts together) through ``sendMessage``, each media part uploaded as
multipart through the method of its kind. A reply part quotes on the first call. The
first call that fails stops the send; what went before stays sent.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from astrlite.im.base import Outgoing, SendError
from astrlite.im.body import Body, FilePiece, Piece
from astrlite.im.outbound import Answer, Outbound
from astrlite.im.outgoing_message import Media, Message, ReplyCheck, Text
from astrlite.im.umo import Umo
from astrlite.outbound.entries import CONNECTION_KEYS, Entry
from astrlite.outbound.registry import ClientRegistry

KEYS = ("token", "base_url", *CONNECTION_KEYS)
DEFAULT_BASE_URL = "https://api.telegram.org"
# sendMessage takes 1-4096 characters; longer text goes out as several messages.
MAX_TEXT_CHARS = 4096
# kind -> (method, the form field of the file)
MEDIA_METHODS: Mapping[str, tuple[str, str]] = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "file": ("sendDocument", "document"),
}
# Voice notes must be OGG/OPUS; other audio is sent as a track.
VOICE = ("sendVoice", "voice")
AUDIO = ("sendAudio", "audio")
VOICE_MIME_TYPE = "audio/ogg"
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    text: str = ""
    media: Media | None = None
    file_field: str = ""


class TelegramPlatform:
    def __init__(self, base_url: str, token: str, outbound: Outbound) -> None:
        # Telegram tokens are `<digits>:<letters>`; quoting keeps any other path intact.
        self._api = f"{base_url}/bot{quote(token, safe=':')}"
        self._outbound = outbound

    @classmethod
    def from_entry(
        cls, raw: Mapping[str, Any], data_dir: Path, clients: ClientRegistry
    ) -> TelegramPlatform:
        entry = Entry(raw, KEYS)
        token = entry.token("token", required=True)
        outbound = Outbound.through(
            clients, entry.connection(data_dir), secrets=(token, quote(token))
        )
        return cls(entry.url("base_url", DEFAULT_BASE_URL), token, outbound)

    def reply_check(self, umo: Umo) -> ReplyCheck | None:
        return None

    async def send(self, outgoing: Outgoing) -> None:
        chat_id = _number_or_text(outgoing.umo.session)
        reply = outgoing.message.reply
        quoted = None if reply is None else {"message_id": _number_or_text(reply.message_id)}
        for call in _calls(outgoing.message):
            fields: dict[str, Any] = {"chat_id": chat_id}
            if quoted is not None:
                fields["reply_parameters"] = quoted
                quoted = None
            url = f"{self._api}/{call.method}"
            if call.media is None:
                fields["text"] = call.text
                body = json.dumps(fields, ensure_ascii=False).encode()
                answer = await self._outbound.post(url, "application/json", body)
            else:
                boundary = secrets.token_hex(16)
                content_type = f"multipart/form-data; boundary={boundary}"
                form = _form(fields, call.file_field, call.media, boundary)
                answer = await self._outbound.post(url, content_type, form)
            _check(answer)


def _calls(message: Message) -> Iterator[_Call]:
    text = ""
    for part in message.parts:
        if isinstance(part, Text):
            text += part.text
        elif isinstance(part, Media):
            yield from _text_calls(text)
            text = ""
            method, file_field = _method_and_field(part)
            yield _Call(method, media=part, file_field=file_field)
    yield from _text_calls(text)


def _text_calls(text: str) -> Iterator[_Call]:
    for start in range(0, len(text), MAX_TEXT_CHARS):
        yield _Call("sendMessage", text=text[start : start + MAX_TEXT_CHARS])


def _method_and_field(media: Media) -> tuple[str, str]:
    if media.kind == "record":
        return VOICE if media.attachment.mime_type == VOICE_MIME_TYPE else AUDIO
    return MEDIA_METHODS[media.kind]


def _number_or_text(value: str) -> int | str:
    """Bot API ids are integers; anything else (``@channel``) passes as given."""
    return int(value) if _INTEGER.fullmatch(value) else value


def _form(fields: Mapping[str, Any], file_field: str, media: Media, boundary: str) -> Body:
    """multipart/form-data: the fields (objects JSON-serialized, as the Bot API wants
    them), then the file, streamed from disk."""
    pieces: list[Piece] = []
    for name, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value)
        pieces.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{text}\r\n".encode()
        )
    name = _quoted_filename(media.name)
    pieces.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{name}"\r\nContent-Type: {media.attachment.mime_type}\r\n\r\n'
        ).encode()
    )
    pieces.append(FilePiece(media.file, base64=False))
    pieces.append(f"\r\n--{boundary}--\r\n".encode())
    return Body(pieces)


def _quoted_filename(name: str) -> str:
    """As browsers write it (WHATWG HTML): UTF-8, with `"` and line breaks escaped."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _check(answer: Answer) -> None:
    reply = answer.json_object()
    if reply is None or "ok" not in reply:
        raise SendError(f"{answer.summary()}, not a Bot API answer")
    if reply["ok"] is not True:
        description = reply.get("description")
        raise SendError(str(description) if description else answer.summary())

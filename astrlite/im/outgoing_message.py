"""The message of ``POST /api/v1/im/message``, parsed strictly (docs/compatibility.md M11).

The walk of ``/chat`` (M11), but a part that would be dropped there is an error here,
with the original's strings, checked part by part in order. Two fixes: an attachment
must belong to the calling key (F21), and a missing file is named by its attachment id,
never by its server path (F16). A media file is opened while its part is checked, so a
file removed later is still sent whole; close the message when done with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from astrlite.errors import EMPTY_CONTENT, business
from astrlite.files import MEDIA_KINDS
from astrlite.files.attachments import AttachmentRow, AttachmentStore, OpenedFile

# An edge box sends notifications, not albums; a bound keeps one request's open files
# and outbound calls small (Telegram sends one request per part).
MAX_PARTS = 100

NOT_STRING_OR_LIST = "message must be a string or list"
TOO_MANY_PARTS = f"message has too many parts (limit {MAX_PARTS})"
NOT_AN_OBJECT = "message part must be an object"
REPLY_WITHOUT_ID = "reply part missing message_id"
REPLY_NOT_FOUND = "reply message not found: {}"
UNSUPPORTED_TYPE = "unsupported message part type: {}"
MEDIA_WITHOUT_ID = "{} part missing attachment_id"
ATTACHMENT_NOT_FOUND = "attachment not found: {}"
FILE_NOT_FOUND = "file not found: {}"


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    message_id: str
    selected_text: str


@dataclass(frozen=True, slots=True)
class Media:
    """A stored file; ``kind`` is the stored one, whatever type the client named (M11)."""

    attachment: AttachmentRow
    file: OpenedFile

    @property
    def kind(self) -> str:
        return self.attachment.kind

    @property
    def name(self) -> str:
        return self.attachment.original_name


Part = Text | Reply | Media


@dataclass(frozen=True, slots=True)
class Message:
    parts: tuple[Part, ...]

    @property
    def media(self) -> tuple[Media, ...]:
        return tuple(part for part in self.parts if isinstance(part, Media))

    @property
    def reply(self) -> Reply | None:
        """The first reply part: what the message answers, on platforms that quote one."""
        return next((part for part in self.parts if isinstance(part, Reply)), None)

    def close(self) -> None:
        for media in self.media:
            media.file.close()


def describe(part: Part) -> dict[str, Any]:
    """A part as JSON, for the webhook payload and the outbox (files not included)."""
    if isinstance(part, Text):
        return {"type": "plain", "text": part.text}
    if isinstance(part, Reply):
        return {"type": "reply", "message_id": part.message_id, "selected_text": part.selected_text}
    row = part.attachment
    return {
        "type": row.kind,
        "attachment_id": row.attachment_id,
        "filename": row.original_name,
        "mime_type": row.mime_type,
        "size": part.file.size,
    }


# Whether a reply may quote this message id; None: any id passes through (F13).
ReplyCheck = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Lookups:
    attachments: AttachmentStore
    key_id: str  # the calling key, which must own every attachment (F21)
    reply_allowed: ReplyCheck | None


async def parse_message(payload: Any, lookups: Lookups) -> Message:
    """The checked message; business errors with the original's strings otherwise."""
    if isinstance(payload, str):
        text = payload.strip()
        if not text:
            raise business(400, EMPTY_CONTENT)
        return Message((Text(text),))
    if not isinstance(payload, list):
        raise business(400, NOT_STRING_OR_LIST)
    if len(payload) > MAX_PARTS:
        raise business(400, TOO_MANY_PARTS)
    parts: list[Part] = []
    try:
        for item in payload:
            part = await _part(item, lookups)
            if part is not None:
                parts.append(part)
        if all(isinstance(part, Reply) for part in parts):
            raise business(400, EMPTY_CONTENT)
    except BaseException:
        Message(tuple(parts)).close()
        raise
    return Message(tuple(parts))


async def _part(item: Any, lookups: Lookups) -> Part | None:
    if not isinstance(item, dict):
        raise business(400, NOT_AN_OBJECT)
    kind = str(item.get("type", "")).strip()
    if kind == "plain":
        text = str(item.get("text", ""))
        return Text(text) if text else None  # empty plains are skipped, not refused
    if kind == "reply":
        return _reply(item, lookups.reply_allowed)
    if kind in MEDIA_KINDS:
        return await _media(kind, item.get("attachment_id"), lookups)
    raise business(400, UNSUPPORTED_TYPE.format(kind))


def _reply(item: dict[str, Any], allowed: ReplyCheck | None) -> Reply:
    message_id = item.get("message_id")
    if message_id is None:
        raise business(400, REPLY_WITHOUT_ID)
    if allowed is not None and not allowed(message_id):
        raise business(400, REPLY_NOT_FOUND.format(message_id))
    return Reply(str(message_id), str(item.get("selected_text", "")))


async def _media(kind: str, attachment_id: Any, lookups: Lookups) -> Media:
    if not attachment_id:
        raise business(400, MEDIA_WITHOUT_ID.format(kind))
    row = lookups.attachments.get(str(attachment_id), lookups.key_id)
    if row is None:
        raise business(404, ATTACHMENT_NOT_FOUND.format(attachment_id))
    try:
        opened = await lookups.attachments.open(row)
    except OSError:
        raise business(404, FILE_NOT_FOUND.format(row.attachment_id)) from None
    return Media(row, opened)

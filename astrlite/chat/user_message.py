"""The message of ``POST /api/v1/chat``, parsed in AstrBot's non-strict mode
(docs/compatibility.md M11).

A string is stripped and becomes one plain part. In a list, every item that is not a
usable part is dropped silently: non-objects, unknown types, empty plains, replies
without ``message_id`` or quoting a row of another session (F13), media whose
``attachment_id`` is unknown or owned by another key (F21). Anything else (an object, a
number, null) gives no parts. Media parts take the stored attachment's kind, whatever
type the client named. The caller rejects a message without content.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from astrlite.files import MEDIA_KINDS
from astrlite.files.attachments import AttachmentRow

K = TypeVar("K")
V = TypeVar("V")

# Python's int() of a decimal string, as the original compares the id to an integer column.
_ROW_ID = re.compile(r"\s*[+]?\d+\s*")


@dataclass(frozen=True, slots=True)
class Quote:
    """What a reply part quotes: the selected text, or the quoted row's text."""

    sender: str
    text: str


class ParsedMessage(NamedTuple):
    parts: tuple[dict[str, Any], ...]  # as stored in the user history row
    text: str  # the plain parts' texts, joined
    quotes: tuple[Quote, ...]
    media: tuple[AttachmentRow, ...]

    @property
    def has_content(self) -> bool:
        """At least one part that is not a reply (a reply-only message is refused)."""
        return any(part["type"] != "reply" for part in self.parts)


class Lookups(NamedTuple):
    """How parts are resolved for one request: both return None for "not yours"."""

    attachment: Callable[[str], AttachmentRow | None]  # owned by the calling key (F21)
    quoted: Callable[[int], Quote | None]  # a row of this session (F13)


def parse_message(payload: Any, lookups: Lookups) -> ParsedMessage:
    if isinstance(payload, str):
        text = payload.strip()
        parts = ({"type": "plain", "text": text},) if text else ()
        return ParsedMessage(parts, text, (), ())
    if not isinstance(payload, list):
        return ParsedMessage((), "", (), ())
    parts_out: list[dict[str, Any]] = []
    texts: list[str] = []
    quotes: list[Quote] = []
    media: list[AttachmentRow] = []
    attachment = _memoised(lookups.attachment)
    quoted = _memoised(lookups.quoted)
    for part in payload:
        if not isinstance(part, dict):
            continue
        kind = str(part.get("type", "")).strip()
        if kind == "plain":
            text = str(part.get("text", ""))
            if text:
                parts_out.append({"type": "plain", "text": text})
                texts.append(text)
        elif kind == "reply":
            quote = _quote(part, quoted)
            if quote is not None:
                parts_out.append(
                    {
                        "type": "reply",
                        "message_id": part["message_id"],
                        "selected_text": str(part.get("selected_text", "")),
                    }
                )
                quotes.append(quote)
        elif kind in MEDIA_KINDS:
            attachment_id = part.get("attachment_id")
            row = attachment(str(attachment_id)) if attachment_id else None
            if row is not None:
                parts_out.append(
                    {
                        "type": row.kind,
                        "attachment_id": row.attachment_id,
                        "filename": row.original_name,
                    }
                )
                media.append(row)
    return ParsedMessage(tuple(parts_out), "".join(texts), tuple(quotes), tuple(media))


def _quote(part: dict[str, Any], quoted: Callable[[int], Quote | None]) -> Quote | None:
    message_id = part.get("message_id")
    if message_id is None:
        return None
    row_id = row_id_of(message_id)
    found = None if row_id is None else quoted(row_id)
    if found is None:
        return None
    selected = str(part.get("selected_text", ""))
    return Quote(found.sender, selected) if selected else found


def row_id_of(value: Any) -> int | None:
    """A history row id given as a JSON integer or a decimal string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _ROW_ID.fullmatch(value):
        return int(value)
    return None


def _memoised(lookup: Callable[[K], V]) -> Callable[[K], V]:
    """One database read per distinct id, however often a long message repeats it."""
    seen: dict[K, V] = {}

    def cached(key: K) -> V:
        if key not in seen:
            seen[key] = lookup(key)
        return seen[key]

    return cached

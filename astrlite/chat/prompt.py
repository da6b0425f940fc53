"""What a provider is asked: the config's system prompt, the session's recent turns from
history, then the message being answered (the ProviderRequest contract)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from astrlite.chat.turn import REASONING_PREFIX
from astrlite.chat.user_message import ParsedMessage, Quote
from astrlite.files import MEDIA_KINDS
from astrlite.providers.base import Attachment, ChatMessage, ProviderRequest
from astrlite.store.chat import BOT_SENDER, HistoryRow

# How AstrBot shows a quoted message to the model (docs/compatibility.md M15).
QUOTE_TEMPLATE = "<Quoted Message>\n({sender}): {text}\n</Quoted Message>\n"


def plain_text(content: Mapping[str, Any]) -> str:
    """The texts of a history row's plain parts, joined."""
    return "".join(
        str(part.get("text", ""))
        for part in content.get("message", [])
        if isinstance(part, dict) and part.get("type") == "plain"
    )


def quote_of(row: HistoryRow) -> Quote:
    return Quote(row.sender_name or row.sender_id, plain_text(row.content))


def user_text(message: ParsedMessage) -> str:
    """The user's text with what it quotes in front."""
    quoted = "".join(QUOTE_TEMPLATE.format(sender=q.sender, text=q.text) for q in message.quotes)
    return quoted + message.text


def history_messages(
    rows: Iterable[HistoryRow], attachment: Callable[[str], Attachment | None]
) -> list[ChatMessage]:
    """Earlier turns as chat messages: user rows with their media (those ``attachment``
    still finds), bot rows as assistant text. Quotes are not repeated."""
    messages = []
    for row in rows:
        text = plain_text(row.content)
        if row.sender_id == BOT_SENDER:
            # A non-streamed reasoning line is its own row; it is not part of the answer.
            if text and not text.startswith(REASONING_PREFIX):
                messages.append(ChatMessage("assistant", text))
            continue
        found = (attachment(str(part.get("attachment_id"))) for part in _media_parts(row))
        messages.append(ChatMessage("user", text, tuple(a for a in found if a is not None)))
    return messages


def build_request(
    system_prompt: str,
    history: Iterable[ChatMessage],
    current: ChatMessage,
    *,
    model: str | None,
    stream: bool,
) -> ProviderRequest:
    system = (ChatMessage("system", system_prompt),) if system_prompt else ()
    return ProviderRequest((*system, *history, current), model, stream)


def _media_parts(row: HistoryRow) -> list[dict[str, Any]]:
    return [
        part
        for part in row.content.get("message", [])
        if isinstance(part, dict) and part.get("type") in MEDIA_KINDS
    ]

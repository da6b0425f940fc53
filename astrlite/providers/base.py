"""The one interface every reply provider implements.

A provider turns a ProviderRequest into an async stream of ProviderEvents. It knows
nothing about SSE, history rows or sockets: the chat layer turns the events into the
wire events of AstrBot's transcripts and decides what is saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Attachment:
    """A media file given to the provider with a message."""

    kind: str  # image | record | video | file
    path: str  # absolute path of the stored file
    mime_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    # The config's system prompt first (when non-empty), then the session's last
    # `context_turns` turns, then the current user message last.
    messages: tuple[ChatMessage, ...]
    model: str | None  # the request's selected_model; None means the provider's default
    stream: bool  # the client asked for a streamed reply


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolResult:
    id: str
    result: str


@dataclass(frozen=True, slots=True)
class MediaReply:
    """The bot sends a file; the chat layer stores a copy as an attachment."""

    kind: str  # image | record | video | file
    path: str  # absolute path of the file to copy
    filename: str  # the name it is known by (its suffix is kept)


@dataclass(frozen=True, slots=True)
class Usage:
    input_other: int
    input_cached: int
    output: int


ProviderEvent = TextDelta | ReasoningDelta | ToolCall | ToolResult | MediaReply | Usage


class ProviderError(Exception):
    """The provider failed; str(error) is the reason shown to the user after 'LLM 响应错误: '."""


class Provider(Protocol):
    id: str

    def reply(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the reply's events; raise ProviderError on failure (after any events)."""
        ...

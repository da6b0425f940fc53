"""What a turn saves as bot history rows: AstrBot's rules, followed literally
(docs/compatibility.md M6).

Feed every back-queue event of a turn, in order, including events injected into the
stream by ``/im/message``. ``feed`` returns the content of a bot history row at each save
point; the caller writes it and sends ``message_saved``. The rules, verbatim:

- ``plain`` streaming appends to the text, ``plain`` not streaming replaces it;
  ``chain_type`` ``reasoning`` appends to the reasoning;
- ``tool_call`` remembers the call, flushing any accumulated text as a plain part first;
  ``tool_call_result`` adds a ``tool_call`` part (call + result + finished_ts);
- ``image``/``record``/``file`` add a media part (only when the file was stored);
- ``agent_stats`` is kept for the next row; no save;
- save point: (``streaming`` and type ``complete``) or ``streaming`` false, except the
  tool events and ``end``. The accumulator resets after a save, but keeps the calls.

Consequences worth knowing: a streaming reply is one row that includes ``agent_stats``;
each non-streaming plain or media event is its own row, and ``agent_stats`` (arriving after
the last one) is never stored. Media and tool parts come first, the text last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from astrlite.chat.events import (
    CHAIN_REASONING,
    CHAIN_TOOL_CALL,
    CHAIN_TOOL_CALL_RESULT,
    MEDIA_TAGS,
    Event,
    media_part,
)
from astrlite.chat.text import TextBuffer

BotRow = dict[str, Any]

# Event types that carry reply content; anything else (agent_stats, end, and the route's
# own session_id / message_saved) never triggers a save.
_CONTENT_TYPES = frozenset({"plain", "complete", *MEDIA_TAGS})
_TOOL_CHAINS = frozenset({CHAIN_TOOL_CALL, CHAIN_TOOL_CALL_RESULT})


def is_save_point(event: Mapping[str, Any]) -> bool:
    """True when a bot row must be written right after this event."""
    kind = event.get("type")
    if kind not in _CONTENT_TYPES or event.get("chain_type") in _TOOL_CHAINS:
        return False
    return not event.get("streaming", False) or kind == "complete"


class ReplyAccumulator:
    """The route's accumulator for one turn (one back queue)."""

    __slots__ = ("_agent_stats", "_arrival_order", "_parts", "_reasoning", "_text", "_tool_calls")

    def __init__(self, *, arrival_order: bool = False) -> None:
        # 4.27 (Profile.arrival_order): text before a media part is its own part first.
        self._arrival_order = arrival_order
        self._text = TextBuffer()
        self._reasoning = TextBuffer()
        self._parts: list[dict[str, Any]] = []
        self._agent_stats: dict[str, Any] | None = None
        # Calls waiting for (or matched to) their result; not reset by a save (as AstrBot, M6).
        self._tool_calls: dict[str, dict[str, Any]] = {}

    def feed(self, event: Event, attachment_id: str | None = None) -> BotRow | None:
        """Take the next event; return the bot row's content when it is a save point.

        ``attachment_id`` is the stored attachment of a media event. Without one (the
        file could not be stored) the media event adds nothing, as in the original.
        """
        kind = event.get("type")
        if kind == "plain":
            self._add_plain(event)
        elif kind in MEDIA_TAGS and attachment_id is not None:
            if self._arrival_order and self._text:
                self._parts.append({"type": "plain", "text": self._text.value()})
                self._text.clear()
            self._parts.append(media_part(event, attachment_id))
        elif kind == "agent_stats":
            self._agent_stats = dict(event["data"])
        if not is_save_point(event):
            return None
        row = self._row()
        self._reset()
        return row

    def _add_plain(self, event: Event) -> None:
        data = str(event["data"])
        chain_type = event.get("chain_type")
        if chain_type == CHAIN_TOOL_CALL:
            call = json.loads(data)
            self._tool_calls[str(call.get("id"))] = call
            if self._text:
                self._parts.append({"type": "plain", "text": self._text.value()})
                self._text.clear()
        elif chain_type == CHAIN_TOOL_CALL_RESULT:
            outcome = json.loads(data)
            call = self._tool_calls.get(str(outcome.get("id")))
            if call is not None:
                call["result"] = outcome.get("result")
                call["finished_ts"] = outcome.get("ts")
                self._parts.append({"type": "tool_call", "tool_calls": [dict(call)]})
        elif chain_type == CHAIN_REASONING:
            self._reasoning.append(data)
        elif event.get("streaming"):
            self._text.append(data)
        else:
            self._text.replace(data)

    def _row(self) -> BotRow:
        message = list(self._parts)
        if self._text:
            message.append({"type": "plain", "text": self._text.value()})
        row: BotRow = {"type": "bot", "message": message}
        if self._reasoning:
            row["reasoning"] = self._reasoning.value()
        if self._agent_stats:
            row["agent_stats"] = self._agent_stats
        return row

    def _reset(self) -> None:
        self._text.clear()
        self._reasoning.clear()
        self._parts = []
        self._agent_stats = None

"""How a client's turns are put on the wire: as SSE (docs/compatibility.md M5) or as
WebSocket frames (M17), which carry the ids in two more places.

The runner and the live turn only ever encode through a `Framing`, so a turn streams to
either kind of client with the same events, persistence and queueing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from astrlite.chat.events import (
    Event,
    end_event,
    end_wire,
    message_saved_event,
    message_saved_wire,
    session_id_event,
    session_id_wire,
)
from astrlite.sse import encode_event


@dataclass(frozen=True, slots=True)
class Framing:
    encode: Callable[[Event], bytes]
    # WebSocket (M17): the first event names the message_id, and every message_saved
    # names the session.
    ids_in_events: bool = False
    # The events are SSE frames (encode_event), so an Emit's pre-encoded `wire` serves.
    sse: bool = False
    # Where the profile has run events, this client also sees `user_message_saved`,
    # `attachment_saved` and the checkpoint id in `message_saved` (4.27's WebSocket
    # shows none of them; docs/compatibility.md P4).
    shows_saves: bool = True

    @property
    def templated(self) -> bool:
        """SSE frames of the events as their builders make them: every turn's
        ``session_id``, ``message_saved`` and ``end`` come from templates (events.py)."""
        return self.sse and not self.ids_in_events

    def first(self, session_id: str, message_id: str) -> bytes:
        if self.templated:
            return session_id_wire(session_id)
        event = session_id_event(session_id)
        if self.ids_in_events:
            event["message_id"] = message_id
        return self.encode(event)

    def saved_event(
        self, row_id: int, created_at: str, session_id: str, checkpoint_id: str | None
    ) -> Event:
        """``message_saved`` for a bot row (4.27 SSE: with the turn's checkpoint id)."""
        event = message_saved_event(row_id, created_at, checkpoint_id)
        if self.ids_in_events:
            event["session_id"] = session_id
        return event

    def saved_wire(self, row_id: int, created_at: str, checkpoint_id: str | None) -> bytes | None:
        """The frame of ``saved_event`` when templated, else None (an Emit's ``wire``)."""
        return message_saved_wire(row_id, created_at, checkpoint_id) if self.templated else None

    def end(self, message_id: str) -> bytes:
        return end_wire(message_id) if self.templated else self.encode(end_event(message_id))


SSE = Framing(encode_event, sse=True)

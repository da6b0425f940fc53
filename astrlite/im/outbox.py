"""The ``outbox`` platform: records every message sent to it instead of delivering it,
for tests of clients (read back with ``GET /api/v1/im/outbox`` or ``Platforms.outbox``).

Entry: ``{"id", "type": "outbox", "enable"}``. All outboxes share one log in memory,
which keeps the newest ``MAX_RECORDED`` messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from astrlite.outbound.entries import Entry
from astrlite.store import clock

if TYPE_CHECKING:
    from astrlite.im.base import Outgoing
    from astrlite.im.outgoing_message import ReplyCheck
    from astrlite.im.umo import Umo

# A test sends tens of messages; the bound only keeps a long-lived fixture server (one
# per test session) from growing without end.
MAX_RECORDED = 1000


@dataclass(frozen=True, slots=True)
class Recorded:
    platform_id: str
    umo: str
    message: tuple[dict[str, Any], ...]
    sent_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "platform_id": self.platform_id,
            "umo": self.umo,
            "message": list(self.message),
            "sent_at": self.sent_at,
        }


class OutboxLog:
    def __init__(self, limit: int = MAX_RECORDED) -> None:
        self._recorded: deque[Recorded] = deque(maxlen=limit)

    def add(self, recorded: Recorded) -> None:
        self._recorded.append(recorded)

    def messages(self, platform_id: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; only one platform's when platform_id is given. A plain copy,
        safe to call from another thread than the server's."""
        return [
            recorded.to_json()
            for recorded in list(self._recorded)
            if platform_id is None or recorded.platform_id == platform_id
        ]


class OutboxPlatform:
    def __init__(self, platform_id: str, log: OutboxLog) -> None:
        self._id = platform_id
        self._log = log

    @classmethod
    def from_entry(cls, raw: Mapping[str, Any], log: OutboxLog) -> OutboxPlatform:
        return cls(Entry(raw, ()).id, log)

    def reply_check(self, umo: Umo) -> ReplyCheck | None:
        return None

    async def send(self, outgoing: Outgoing) -> None:
        # Sends load the message parts' module (a server that never sends does not).
        from astrlite.im.outgoing_message import describe

        message = tuple(describe(part) for part in outgoing.message.parts)
        self._log.add(Recorded(self._id, str(outgoing.umo), message, clock.now_iso()))

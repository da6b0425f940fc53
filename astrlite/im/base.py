"""The one interface every platform implements, and what a send carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from astrlite.im.outgoing_message import Message, ReplyCheck
    from astrlite.im.umo import Umo


class SendError(Exception):
    """The platform did not take the message; str(error) says why, in its own words
    where it gave any. Never contains a secret."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    umo: Umo
    message: Message
    key_id: str  # the calling key: owns what the message leaves behind (webchat copies)


class Platform(Protocol):
    def reply_check(self, umo: Umo) -> ReplyCheck | None:
        """How reply parts to this target are checked; None passes any id through."""
        ...

    async def send(self, outgoing: Outgoing) -> None:
        """Deliver the message (SendError when the platform refuses or fails)."""
        ...

"""The unified message origin, ``<platform_id>:<MessageType>:<session>``
(docs/compatibility.md M11)."""

from __future__ import annotations

from dataclasses import dataclass

from astrlite.errors import business

MESSAGE_TYPES = ("GroupMessage", "FriendMessage", "OtherMessage")
FRIEND = "FriendMessage"
GROUP = "GroupMessage"

# The original's own words: Python's unpacking error, then its enum's.
NOT_ENOUGH_VALUES = "Invalid umo: not enough values to unpack (expected 3, got {})"
NOT_A_MESSAGE_TYPE = "Invalid umo: {!r} is not a valid MessageType"


@dataclass(frozen=True, slots=True)
class Umo:
    platform_id: str
    message_type: str
    session: str  # may contain colons

    def __str__(self) -> str:
        return f"{self.platform_id}:{self.message_type}:{self.session}"


def parse_umo(value: str) -> Umo:
    """Split on the first two colons; business 400 with the original's strings."""
    fields = value.split(":", 2)
    if len(fields) < 3:
        raise business(400, NOT_ENOUGH_VALUES.format(len(fields)))
    platform_id, message_type, session = fields
    if message_type not in MESSAGE_TYPES:
        raise business(400, NOT_A_MESSAGE_TYPE.format(message_type))
    return Umo(platform_id, message_type, session)

"""The access log: one line per answered request, in words and as structured fields.

Never the key itself: the key id names the caller, and query-string keys are redacted
from the target (F18).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

access_log = logging.getLogger("astrlite.access")
# A user agent is the client's own text: cut it so one request cannot flood the log.
MAX_USER_AGENT = 200


@dataclass(frozen=True, slots=True)
class Access:
    client: str  # "host:port" of the peer, "-" when unknown
    key_id: str | None
    method: str
    target: str  # already redacted
    status: int
    sent: int  # body bytes
    seconds: float
    user_agent: str | None


def user_agent_of(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value[:MAX_USER_AGENT].decode("latin-1")


def line(entry: Access) -> str:
    agent = "-" if entry.user_agent is None else entry.user_agent.replace('"', "'")
    return (
        f'{entry.client} {entry.key_id or "-"} "{entry.method} {entry.target}" '
        f'{entry.status} {entry.sent} {entry.seconds * 1000:.1f}ms "{agent}"'
    )


def fields(entry: Access) -> dict[str, object]:
    """The structured form, for --log-format json."""
    return {
        "client": entry.client,
        "key_id": entry.key_id,
        "method": entry.method,
        "target": entry.target,
        "status": entry.status,
        "bytes": entry.sent,
        "duration_ms": round(entry.seconds * 1000, 3),
        "user_agent": entry.user_agent,
    }


class _Message:
    """The record's message and its structured fields, each made only when a handler
    writes the line: `str()` for text, `as_dict()` for the JSON format (operations.logs)."""

    __slots__ = ("entry",)

    def __init__(self, entry: Access) -> None:
        self.entry = entry

    def __str__(self) -> str:
        return line(self.entry)

    def as_dict(self) -> dict[str, object]:
        return fields(self.entry)


def enabled() -> bool:
    return access_log.isEnabledFor(logging.INFO)


def log(entry: Access) -> None:
    """One access line. The record is made here rather than by `Logger.info`, which
    would also look up the caller's source line on every request: no format of ours
    shows it."""
    if enabled():
        message = _Message(entry)
        record = access_log.makeRecord(
            access_log.name,
            logging.INFO,
            "",
            0,
            "%s",
            (message,),
            None,
            extra={"fields": message},
        )
        access_log.handle(record)

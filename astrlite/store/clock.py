"""Time as stored and sent: ISO 8601 UTC with +00:00 (docs/compatibility.md M7)."""

from __future__ import annotations

from datetime import datetime

from astrlite import sources


def now() -> datetime:
    return sources.now()


def iso(moment: datetime) -> str:
    return moment.isoformat()


def now_iso() -> str:
    return sources.now_iso()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)

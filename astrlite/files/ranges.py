"""``Range`` and ``If-None-Match`` for downloads (RFC 9110 §14, §13.1.2; docs/compatibility.md F14).

Only a single byte range is served. A malformed ``Range``, a reversed one (``5-2``), a
unit other than ``bytes`` and a multi-range request are ignored, so the whole file is
sent with 200: RFC 9110 §14.2 lets a server ignore Range, and a single 200 is simpler
for every client than ``multipart/byteranges``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

# A single range: `first-last`, `first-` or `-suffix`, with optional whitespace around it.
_RANGE_RE = re.compile(r"bytes=[ \t]*([0-9]*)-([0-9]*)[ \t]*", re.IGNORECASE | re.ASCII)
# 19 digits hold any real file size (< 2**63); a longer number is taken as "huge" rather
# than parsed (Python refuses to parse more than 4300 digits).
_MAX_DIGITS = 19
_HUGE = 10**_MAX_DIGITS

_ENTITY_TAG_RE = re.compile(r'(?:W/)?"([^"]*)"')
# A list of entity-tags (RFC 9110 §5.6.1: empty elements allowed); a comma may sit
# inside a tag, so the list is checked whole rather than split.
_ENTITY_TAG_LIST_RE = re.compile(r'(?:(?:W/)?"[^"]*"|[ \t,])*')


@dataclass(frozen=True, slots=True)
class FullContent:
    """Send the whole file with 200."""


@dataclass(frozen=True, slots=True)
class PartialContent:
    """Send bytes start..end (inclusive) with 206."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


@dataclass(frozen=True, slots=True)
class RangeNotSatisfiable:
    """Answer 416 with this Content-Range."""

    size: int

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


RangeResult: TypeAlias = FullContent | PartialContent | RangeNotSatisfiable


def parse_range(header: str | None, size: int) -> RangeResult:
    """What to send for a ``Range`` header on a file of ``size`` bytes."""
    match = _RANGE_RE.fullmatch(header.strip()) if header is not None else None
    if match is None or match[1] == match[2] == "":
        return FullContent()
    first, last = match[1], match[2]
    if first == "":
        return _suffix(_to_int(last), size)
    start = _to_int(first)
    end = _to_int(last) if last else _HUGE
    if end < start:
        return FullContent()
    if start >= size:
        return RangeNotSatisfiable(size)
    return PartialContent(start, min(end, size - 1), size)


def _suffix(length: int, size: int) -> RangeResult:
    if length == 0 or size == 0:
        return RangeNotSatisfiable(size)
    return PartialContent(max(0, size - length), size - 1, size)


def _to_int(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= _MAX_DIGITS else _HUGE


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` matches ``etag``, by weak comparison (RFC 9110 §13.1.2).

    A malformed header matches nothing, so the full response is sent.
    """
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    if _ENTITY_TAG_LIST_RE.fullmatch(if_none_match) is None:
        return False
    ours = etag.removeprefix("W/").strip('"')
    return any(tag[1] == ours for tag in _ENTITY_TAG_RE.finditer(if_none_match))

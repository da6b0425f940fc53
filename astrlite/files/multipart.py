"""Incremental ``multipart/form-data`` parser (RFC 7578; delimiters per RFC 2046 §5.1.1).

Sans-IO: feed body bytes as they arrive and get events back. Memory stays bounded by
the part-header limit plus the boundary line, whatever the size of a part: a part's
bytes are handed out as soon as they cannot be the start of a delimiter.

After a ``MultipartError`` the parser is in an undefined state; drop it.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

# RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY_LENGTH = 70
# A form has a handful of fields; thousands of parts only inflate the event list.
DEFAULT_MAX_PARTS = 1000
# A part carries two or three short headers; 8 KiB is what servers allow per header line.
DEFAULT_MAX_PART_HEADER_BYTES = 8192
# RFC 2046 transport padding (whitespace a gateway may add after a boundary) is a few
# bytes; the bound keeps a boundary line from holding memory.
MAX_TRANSPORT_PADDING = 256


class MultipartError(ValueError):
    """The body is not valid multipart/form-data; the message is safe to show a client."""


@dataclass(frozen=True, slots=True)
class PartStart:
    name: str
    filename: str | None  # None: a form field, not a file (RFC 7578 §4.2)
    content_type: str | None
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in order received


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


Event: TypeAlias = PartStart | PartData | PartEnd


def parse_boundary(content_type_header: str) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type header value."""
    media_type, params = _parse_header_params(content_type_header)
    if media_type != "multipart/form-data":
        raise MultipartError("Content-Type is not multipart/form-data")
    boundary = params.get("boundary")
    if boundary is None:
        raise MultipartError("no boundary in Content-Type")
    _check_boundary(boundary)
    return boundary


def _check_boundary(boundary: str) -> None:
    if not boundary:
        raise MultipartError("empty boundary in Content-Type")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise MultipartError(f"boundary longer than {MAX_BOUNDARY_LENGTH} characters")
    if not all(" " <= ch <= "~" for ch in boundary):
        raise MultipartError("boundary has characters other than printable ASCII")


# One `; name=value` parameter; the value is a quoted string (maybe unterminated) or a token.
_PARAM_RE = re.compile(
    r"""[;\s]*
        (?P<name>[^\s;=]+)\s*
        (?:=\s*(?P<value>"(?:[^"\\]|\\.)*(?:"|$)|[^;]*))?""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
# Old Internet Explorer sends the full Windows path unescaped: keep its backslashes.
_WINDOWS_PATH_RE = re.compile(r"[A-Za-z]:\\|\\\\")


def _parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type; a=1; b="x y"`` into the lower-cased first item and its parameters.

    Parameter names are lower-cased and the first occurrence wins. Quoted strings lose
    their quotes and backslash escapes (RFC 9110 §5.6.4). Parsing stops at the first
    thing that is not a parameter.
    """
    first, _, rest = value.partition(";")
    params: dict[str, str] = {}
    # Anchored matches, one after the other: searching (finditer) would rescan a long run
    # of separators from every position, quadratic in the header's length.
    pos = 0
    while (match := _PARAM_RE.match(rest, pos)) is not None:
        name = match["name"].lower()
        raw = match["value"] or ""
        params.setdefault(name, _unquote(raw, name) if raw.startswith('"') else raw.strip())
        pos = match.end()
    return first.strip().lower(), params


def _unquote(quoted: str, name: str) -> str:
    inner = quoted[1:-1] if len(quoted) > 1 and quoted.endswith('"') else quoted[1:]
    if name == "filename" and _WINDOWS_PATH_RE.match(inner):
        return inner
    return _ESCAPE_RE.sub(r"\1", inner)


def _decode_ext_value(value: str) -> str | None:
    """An RFC 8187 ``charset'lang'pct-encoded`` value, or None if it is not one."""
    parts = value.split("'", 2)
    if len(parts) != 3 or parts[0].lower() not in ("utf-8", "iso-8859-1"):
        return None
    try:
        return urllib.parse.unquote_to_bytes(parts[2]).decode(parts[0])
    except UnicodeDecodeError:
        return None


def _decode_header_bytes(raw: bytes) -> str:
    # Browsers send file names as raw UTF-8; anything else is taken byte for byte.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_header_block(block: bytes) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for raw_line in block.split(b"\r\n"):
        line = _decode_header_bytes(raw_line)
        if line[:1] in (" ", "\t") and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MultipartError("invalid part header line")
        headers.append((name.strip().lower(), value.strip()))
    return tuple(headers)


def _part_start(headers: tuple[tuple[str, str], ...]) -> PartStart:
    fields = dict(reversed(headers))  # the first occurrence of a header wins
    disposition = fields.get("content-disposition")
    if disposition is None:
        raise MultipartError("part has no Content-Disposition header")
    _, params = _parse_header_params(disposition)
    name = params.get("name")
    if name is None:
        raise MultipartError("part has no name in Content-Disposition")
    filename = None
    if "filename*" in params:  # RFC 7578 §4.2 discourages it, but it is sent: it wins
        filename = _decode_ext_value(params["filename*"])
    if filename is None:
        filename = params.get("filename")
    return PartStart(name, filename, fields.get("content-type") or None, headers)


class _State(enum.Enum):
    PREAMBLE = enum.auto()
    HEADERS = enum.auto()
    DATA = enum.auto()
    EPILOGUE = enum.auto()


class _Line(enum.Enum):
    """What follows ``\\r\\n--boundary``.

    Anything else makes it data, as in Werkzeug (hence AstrBot).
    """

    PART = enum.auto()  # transport padding, then CRLF: a part follows
    CLOSE = enum.auto()  # `--`: the last part ended
    MORE = enum.auto()  # cannot tell yet: keep the bytes from here and wait


# What may follow the delimiter once more bytes arrive, yet is no delimiter line yet.
_UNFINISHED_LINE_RE = re.compile(rb"-?|[ \t]{0,%d}\r?" % MAX_TRANSPORT_PADDING)


class MultipartParser:
    """Turns a ``multipart/form-data`` body into PartStart, PartData… and PartEnd events."""

    def __init__(
        self,
        boundary: str,
        *,
        max_parts: int = DEFAULT_MAX_PARTS,
        max_part_header_bytes: int = DEFAULT_MAX_PART_HEADER_BYTES,
    ) -> None:
        _check_boundary(boundary)
        self._delimiter = b"\r\n--" + boundary.encode("ascii")
        self._delimiter_line = re.compile(
            re.escape(self._delimiter) + rb"(?:(--)|[ \t]{0,%d}\r\n)" % MAX_TRANSPORT_PADDING
        )
        self._max_parts = max_parts
        self._max_header_bytes = max_part_header_bytes
        self._parts = 0
        self._state = _State.PREAMBLE
        # The leading CRLF lets a boundary at the very start of the body match like any other.
        self._buffer = b"\r\n"

    @property
    def buffered(self) -> int:
        """Bytes held back between feeds (bounded by the header limit plus a boundary line)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        events: list[Event] = []
        pos: int | None = 0
        while pos is not None:
            pos = _STEPS[self._state](self, data, pos, events)
        return events

    def close(self) -> list[Event]:
        """Check the body is complete; raises MultipartError if not.

        Returns no events today; it returns a list so callers treat it like ``feed``.
        """
        if self._state is _State.PREAMBLE:
            raise MultipartError("boundary not found in body")
        if self._state is not _State.EPILOGUE:
            raise MultipartError("body ended before the closing boundary")
        return []

    # Each step consumes data from pos and returns where the next step starts, or None
    # once it needs more data (having kept in self._buffer what it must see again).

    def _step_preamble(self, data: bytes, pos: int, events: list[Event]) -> int | None:
        line, begin, end = self._find_delimiter(data, pos)
        if line is _Line.MORE:
            self._buffer = data[begin:]
            return None
        self._state = _State.HEADERS if line is _Line.PART else _State.EPILOGUE
        return end

    def _step_headers(self, data: bytes, pos: int, events: list[Event]) -> int | None:
        if data.startswith(b"\r\n", pos):
            block_end, end = pos, pos + 2
        else:
            block_end = data.find(b"\r\n\r\n", pos)
            if block_end < 0:
                if len(data) - pos >= self._max_header_bytes:
                    raise self._headers_too_large()
                self._buffer = data[pos:]
                return None
            end = block_end + 4
        if end - pos > self._max_header_bytes:
            raise self._headers_too_large()
        self._parts += 1
        if self._parts > self._max_parts:
            raise MultipartError(f"too many parts (limit {self._max_parts})")
        headers = _parse_header_block(data[pos:block_end]) if block_end > pos else ()
        events.append(_part_start(headers))
        self._state = _State.DATA
        return end

    def _step_data(self, data: bytes, pos: int, events: list[Event]) -> int | None:
        line, begin, end = self._find_delimiter(data, pos)
        if begin > pos:
            # A whole feed with nothing held back is passed on without a copy.
            events.append(PartData(data[pos:begin]))
        if line is _Line.MORE:
            self._buffer = data[begin:]
            return None
        events.append(PartEnd())
        self._state = _State.HEADERS if line is _Line.PART else _State.EPILOGUE
        return end

    def _step_epilogue(self, data: bytes, pos: int, events: list[Event]) -> int | None:
        return None

    def _headers_too_large(self) -> MultipartError:
        return MultipartError(f"part headers too large (limit {self._max_header_bytes} bytes)")

    def _find_delimiter(self, data: bytes, start: int) -> tuple[_Line, int, int]:
        """Find the next delimiter line at or after start: (kind, begin, end).

        For PART and CLOSE the line is data[begin:end]. For MORE, data[begin:] may be
        the start of one and must be seen again with more data.
        """
        # bytes.find is the fastest scan; from a hit on, the regex engine, not a Python
        # loop, steps over delimiters that turn out to be data (a body may be full of them).
        found = data.find(self._delimiter, start)
        match = self._delimiter_line.search(data, found) if found >= 0 else None
        if match is not None:
            return (_Line.CLOSE if match[1] else _Line.PART), match.start(), match.end()
        return _Line.MORE, self._undecided_from(data, start), 0

    def _undecided_from(self, data: bytes, start: int) -> int:
        """Where the bytes begin that more data could still turn into a delimiter line."""
        size = len(data)
        # Further back, a delimiter has its whole line in data and was found to be data.
        window = max(start, size - len(self._delimiter) - MAX_TRANSPORT_PADDING - 2)
        found = data.find(self._delimiter, window)
        while found >= 0:
            if _UNFINISHED_LINE_RE.fullmatch(data, found + len(self._delimiter)):
                return found
            found = data.find(self._delimiter, found + 1)
        # Else the longest suffix that begins the delimiter.
        candidate = data.find(b"\r", max(window, size - len(self._delimiter) + 1))
        while candidate >= 0:
            if self._delimiter.startswith(data[candidate:]):
                return candidate
            candidate = data.find(b"\r", candidate + 1)
        return size


_Step: TypeAlias = Callable[[MultipartParser, bytes, int, list[Event]], int | None]
_STEPS: dict[_State, _Step] = {
    _State.PREAMBLE: MultipartParser._step_preamble,
    _State.HEADERS: MultipartParser._step_headers,
    _State.DATA: MultipartParser._step_data,
    _State.EPILOGUE: MultipartParser._step_epilogue,
}

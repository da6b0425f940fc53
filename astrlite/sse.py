"""Server-sent events: the encoder (AstrBot's framing, docs/compatibility.md M5) and a decoder for
the streams we read from upstreams.

Every event is exactly ``data: <json>\\n\\n`` where the JSON is ``json.dumps(event,
ensure_ascii=False)``: spaces after ``,`` and ``:``, raw UTF-8, keys in the dict's order.
No ``id:``, ``event:`` or ``retry:`` fields. The heartbeat (F6) is a comment line.

``json_dumps`` makes that JSON, here and for the history rows a turn stores.
"""

from __future__ import annotations

import json
import json.encoder as json_encoder
import re
from collections.abc import Callable, Sequence
from typing import Any

from astrlite.compat import Profile

DATA_PREFIX = b"data: "
EVENT_END = b"\n\n"
HEARTBEAT = b": heartbeat\n\n"


class LastChunk(bytes):
    """A streamed body's last bytes (an event stream yields them so): the connection
    sends them and the end of the response in one write."""


def sse_headers(profile: Profile) -> tuple[tuple[bytes, bytes], ...]:
    """The server adds Transfer-Encoding: chunked itself (no Content-Length on a stream)."""
    return (
        (b"content-type", profile.sse_content_type),
        (b"cache-control", b"no-cache"),
        (b"connection", b"keep-alive"),
    )


def encode_event(event: dict[str, Any]) -> bytes:
    """Frame one event dict as an SSE ``data:`` block."""
    return DATA_PREFIX + encode_json(event) + EVENT_END


_make_c_encoder: Callable[..., Callable[[object, int], Sequence[str]]] | None = getattr(
    json_encoder, "c_make_encoder", None
)


def json_dumps(*, ensure_ascii: bool) -> Callable[[object], str]:
    """``json.dumps(value, ensure_ascii=ensure_ascii)``, with the same output.

    ``json.dumps`` builds a ``JSONEncoder`` (unless called with its defaults) and, on
    every call, the C encoder that does the work: half and then a third of what encoding
    a small event costs. Here both are built once, for the per-turn paths (events,
    history rows). Without C speedups (another Python), the encoder's own ``encode``.
    Values must be trees (as built, or parsed from JSON): there is no check for circular
    references, which ``json.dumps`` makes.
    """
    encoder = json.JSONEncoder(ensure_ascii=ensure_ascii)
    if _make_c_encoder is None:
        return encoder.encode
    escape = (
        json_encoder.encode_basestring_ascii if ensure_ascii else json_encoder.encode_basestring
    )
    c_encoder = _make_c_encoder(
        None,  # no check for circular references
        encoder.default,
        escape,
        None,  # no indent
        ": ",
        ", ",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )

    def dumps(value: object) -> str:
        return "".join(c_encoder(value, 0))

    return dumps


_dumps_unicode = json_dumps(ensure_ascii=False)


def encode_json(value: object) -> bytes:
    """``json.dumps(value, ensure_ascii=False)`` as UTF-8."""
    text = _dumps_unicode(value)
    # A lone surrogate (valid in JSON input, e.g. "\ud800") cannot be UTF-8 encoded. It can
    # only sit inside a JSON string, where backslashreplace writes it as the JSON escape
    # \udXXX, which decodes back to the same string: the stream never breaks on it.
    return text.encode("utf-8", "backslashreplace")


_encode_string: Callable[[str], str] = json_encoder.encode_basestring


def encode_json_string(text: str) -> bytes:
    """``encode_json`` of a string (a streamed token), without the encoder's dispatch."""
    return _encode_string(text).encode("utf-8", "backslashreplace")


# One streamed chunk is a few hundred bytes; this bounds what a broken upstream can make
# us buffer while waiting for the end of a line or event.
MAX_SSE_EVENT_BYTES = 4 * 1024 * 1024


class SseError(ValueError):
    """The stream cannot be decoded (an event over the size limit)."""


_LINE_END = re.compile(rb"\r\n|\r|\n")


class SseDecoder:
    """Incremental text/event-stream parser (WHATWG HTML §9.2.6) keeping only `data`.

    feed() returns the data of each event completed by the bytes given: `data` lines
    joined with "\\n". Comments and other fields are ignored; an event cut off by the end
    of the stream is never returned, as the standard says.
    """

    def __init__(self, max_event_bytes: int = MAX_SSE_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._buffer = bytearray()
        self._scanned = 0  # _buffer holds no line end before this offset
        self._data: list[str] = []
        self._data_bytes = 0
        self._at_start = True
        self._after_cr = False  # the last line ended with CR, maybe half of a CRLF

    def feed(self, chunk: bytes) -> list[str]:
        if self._after_cr and chunk:
            chunk = chunk.removeprefix(b"\n")  # the LF of a CRLF split between reads
            self._after_cr = False
        events: list[str] = []
        if not self._buffer and chunk.endswith(b"\n") and b"\r" not in chunk:
            self._split_lf(chunk, events)  # whole lines, as they nearly always arrive
        elif b"\r" in self._buffer or b"\r" in chunk:
            self._buffer += chunk
            self._split_any(events)
        else:  # LF only, as nearly every server sends: one split, no pattern
            self._buffer += chunk
            end = self._buffer.rfind(b"\n", self._scanned) + 1
            if end:
                lines = self._buffer[:end]
                del self._buffer[:end]
                self._split_lf(lines, events)
        self._scanned = len(self._buffer)
        if len(self._buffer) + self._data_bytes > self._max:
            raise SseError(f"sent an event longer than {self._max} bytes")
        return events

    def _split_lf(self, lines: bytes | bytearray, events: list[str]) -> None:
        """Whole lines ended by LF: the complete events among them split apart at once,
        and one that is a single `data` line taken whole, as nearly every event is."""
        end = lines.rfind(b"\n\n") + 2  # after the last blank line
        if end > 1 and not self._at_start:
            # `block` + LF LF is the block's lines, then a blank line.
            for block in lines[: end - 2].split(b"\n\n"):
                if not self._data and block.startswith(b"data:") and b"\n" not in block:
                    value = block[6:] if block.startswith(b"data: ") else block[5:]
                    events.append(value.decode("utf-8", "replace"))
                    continue
                for raw in block.split(b"\n"):
                    self._line(raw, events)
                self._line(b"", events)
            lines = lines[end:]
        if lines:
            for raw in lines[:-1].split(b"\n"):
                self._line(raw, events)

    def _split_any(self, events: list[str]) -> None:
        """Lines ended by CRLF, CR or LF."""
        start = 0
        while match := _LINE_END.search(self._buffer, self._scanned):
            self._line(self._buffer[start : match.start()], events)
            start = self._scanned = match.end()
            self._after_cr = match.group() == b"\r" and start == len(self._buffer)
        del self._buffer[:start]

    def _line(self, raw: bytes | bytearray, events: list[str]) -> None:
        if self._at_start:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
            self._at_start = False
        if not raw:
            if self._data:
                events.append("\n".join(self._data))
            self._data, self._data_bytes = [], 0
            return
        if raw.startswith(b"data:"):  # the common line, without splitting a decoded copy
            value = raw[6:] if raw.startswith(b"data: ") else raw[5:]
            self._data.append(value.decode("utf-8", "replace"))
            self._data_bytes += len(raw)
            return
        field, _, value_text = raw.decode("utf-8", "replace").partition(":")
        if field == "data":
            self._data.append(value_text.removeprefix(" "))
            self._data_bytes += len(raw)
